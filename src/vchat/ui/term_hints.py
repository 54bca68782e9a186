"""Terminal detection from the environment alone: what TERM, TERM_PROGRAM and friends say, tmux and ssh."""

from __future__ import annotations

from collections.abc import Mapping

from vchat.ui.term_records import IDENTITY_VARS, Hint, TmuxState


def env_hint(env: Mapping[str, str]) -> Hint:
    """The preview mode the environment names outright, or which question to ask the terminal."""
    term = env.get("TERM", "")
    program = env.get("TERM_PROGRAM", "")
    if env.get("KITTY_WINDOW_ID") or term == "xterm-kitty":
        return Hint("kitty", "kitty")
    if program.lower() == "ghostty" or term == "xterm-ghostty" or env.get("GHOSTTY_RESOURCES_DIR"):
        return Hint("kitty", "Ghostty")
    if program == "WezTerm":
        # WezTerm speaks both, but its kitty graphics are off unless enable_kitty_graphics is set.
        return Hint("iterm", "WezTerm")
    if program == "iTerm.app" or env.get("LC_TERMINAL") == "iTerm2":
        # LC_TERMINAL is what survives ssh (iTerm2 sends it; sshd accepts LC_*).
        return Hint("iterm", "iTerm2")
    if program == "vscode":
        # VS Code's xterm.js shows images only with terminal.integrated.enableImages (off by
        # default). When it is on, DA1 lists sixel, and the same image addon also reads iTerm2
        # images, which we prefer: a lossless PNG instead of a 256-colour palette.
        return Hint(None, "VS Code", on_sixel="iterm")
    if term.startswith("foot"):
        return Hint("sixel", "foot")
    if env.get("MLTERM") or term.startswith("mlterm"):
        return Hint("sixel", "mlterm")
    if env.get("KONSOLE_VERSION"):
        # Konsole ≥ 22.04 has complete sixel and only a subset of the kitty protocol, so sixel
        # is preferred; the query confirms it (the version says nothing of a remote host).
        version = env["KONSOLE_VERSION"]
        new = version.isdigit() and int(version) >= 220400
        return Hint(None, "Konsole", fallback="sixel" if new else "blocks", prefer_sixel=True)
    if env.get("WT_SESSION"):
        # Windows Terminal draws sixel since 1.22 and has no version variable: ask DA1.
        return Hint(None, "Windows Terminal")
    if term == "dumb":
        return Hint("none", "TERM=dumb")
    if term == "linux":
        # The Linux console has no graphics protocol; a query would only print noise.
        return Hint("blocks", "Linux console")
    if program == "Apple_Terminal":
        return Hint("blocks", "Apple Terminal")
    # xterm (sixel only when built and configured for it), mintty, VTE, Alacritty…: ask.
    return Hint(None, f"TERM={term}" if term else "unknown terminal")


def in_tmux(env: Mapping[str, str]) -> bool:
    """Whether output goes through tmux (or a screen-like multiplexer posing as one)."""
    term = env.get("TERM", "")
    return bool(env.get("TMUX")) or term.startswith(("tmux", "screen"))


def outer_env(env: Mapping[str, str], state: TmuxState) -> dict[str, str]:
    """The environment as if seen by the terminal tmux runs in: tmux replaces TERM and TERM_PROGRAM."""
    dropped = {"TERM", "TERM_PROGRAM", "TMUX"}
    if state.client_type:
        # tmux ≥ 3.3 knows the attached terminal's own name (XTVERSION); variables inherited
        # by the tmux server may be left over from a terminal that has since detached.
        dropped |= set(IDENTITY_VARS)
    outer = {k: v for k, v in env.items() if k not in dropped}
    if state.client_term:
        outer["TERM"] = state.client_term
    kind = state.client_type.lower()
    for prefix, program in (("iterm2", "iTerm.app"), ("wezterm", "WezTerm"), ("ghostty", "ghostty")):
        if kind.startswith(prefix):
            outer["TERM_PROGRAM"] = program
    if kind.startswith("kitty"):
        outer["TERM"] = "xterm-kitty"
    if kind.startswith("foot"):
        outer["TERM"] = "foot"
    return outer


def over_ssh(env: Mapping[str, str]) -> bool:
    """Whether this process runs in an ssh session (its terminal's answers cross the network)."""
    return bool(env.get("SSH_CONNECTION") or env.get("SSH_TTY") or env.get("SSH_CLIENT"))


def draws_placeholders(env: Mapping[str, str], state: TmuxState) -> bool:
    """Whether the terminal tmux runs in draws kitty's Unicode placeholders (kitty 0.28+, Ghostty)."""
    return env_hint(outer_env(env, state)).reason in ("kitty", "Ghostty")
