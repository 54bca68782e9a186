"""Error tree: every failure vchat reports is a VchatError with a one-line message."""

from __future__ import annotations


class VchatError(Exception):
    """Base of every error vchat raises on purpose; str() is a one-line user message."""


class ConfigError(VchatError):
    """Settings are invalid (bad TOML, unknown value, bad flag)."""


class ParseError(VchatError):
    """The model's reply could not be read; the message is written back to the model."""


class ToolInputError(VchatError):
    """A tool call's input does not fit the tool's fields; told to the model."""


class UnknownImageError(VchatError):
    """An image name that the session does not know; told to the model."""


class ImageError(VchatError):
    """A file could not be read as an image (missing, not an image, truncated, too big)."""


class UnsafePathError(VchatError):
    """A path outside what the session may read or write."""


class ToolError(VchatError):
    """A tool failed in a way the model should hear about (no object found, bad size)."""


class LLMError(VchatError):
    """The language model backend failed (down, bad key, unknown model, timeout)."""


class ToolsUnsupported(LLMError):
    """The server refused native tool calling (`tools`); the agent falls back to the text protocol."""


class NoModelError(LLMError):
    """No language model is configured or reachable."""


class ModelLoadError(VchatError):
    """Weights could not be loaded (missing offline, corrupt, out of memory)."""


class ToolUnavailable(ModelLoadError):
    """A tool cannot run now (weights missing offline, out of memory): the model must not substitute another."""

    # Told to the model whenever an SD tool cannot run, because Visual ChatGPT's models quietly fell back to
    # generating a fresh image instead of editing and claimed success.
    for_model = "this tool cannot run now; tell the user so and do not use another tool in its place"


class Cancelled(VchatError):
    """The user cancelled the running turn (Ctrl-C)."""


class UsageError(VchatError):
    """The command line itself is wrong (unknown tool, malformed --arg, bad flag value); exit code 2."""
