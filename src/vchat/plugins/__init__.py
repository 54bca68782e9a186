"""Python plugins: tools from installed packages through the `vchat.tools` entry-point group."""

from __future__ import annotations

from vchat.plugins.loader import ENTRY_POINT_GROUP, Plugin, PluginSet, installed_plugins, load_plugins

__all__ = ["ENTRY_POINT_GROUP", "Plugin", "PluginSet", "installed_plugins", "load_plugins"]
