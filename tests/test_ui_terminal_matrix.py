"""The preview matrix: terminal × (tmux off, tmux without passthrough, tmux with passthrough) × (local, over ssh).

Each terminal is simulated by what reaches vchat: the environment (over ssh only TERM and LC_* survive, as sshd
passes them), the terminal's answer to the one query, and what tmux says of the terminal attached to it
(`#{client_termname}`, `#{client_termtype}`). `python -m tests.test_ui_terminal_matrix` prints the table.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from vchat.ui import terminal as T

KITTY_OK = b"\x1b_Gi=31;OK\x1b\\"
DA1_SIXEL = b"\x1b[?62;4;22c"
DA1_PLAIN = b"\x1b[?62;22c"
SIZE = T.WinSize(120, 40, 1200, 800)


class Term(NamedTuple):
    name: str
    local: dict[str, str]  # the environment a local shell has
    remote: dict[str, str]  # what survives ssh (TERM, LC_*)
    reply: bytes  # the answer to the query (b"": silent)
    tmux_term: str  # what tmux reports of it
    tmux_type: str


TERMS = [
    Term("kitty", {"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"}, {"TERM": "xterm-kitty"}, KITTY_OK + DA1_PLAIN,
         "xterm-kitty", "kitty(0.35.2)"),
    Term("Ghostty", {"TERM": "xterm-ghostty", "TERM_PROGRAM": "ghostty"}, {"TERM": "xterm-ghostty"},
         KITTY_OK + DA1_PLAIN, "xterm-ghostty", "ghostty 1.1.0"),
    Term("WezTerm", {"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, {"TERM": "xterm-256color"}, DA1_SIXEL,
         "xterm-256color", "WezTerm 20240203"),
    Term("iTerm2", {"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app", "LC_TERMINAL": "iTerm2"},
         {"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2"}, DA1_SIXEL, "xterm-256color", "iTerm2 3.5.0"),
    Term("foot", {"TERM": "foot"}, {"TERM": "foot"}, DA1_SIXEL, "foot", "foot(1.16.2)"),
    Term("xterm (sixel on)", {"TERM": "xterm-256color"}, {"TERM": "xterm-256color"}, DA1_SIXEL, "xterm-256color",
         "XTerm(390)"),
    Term("xterm (no sixel)", {"TERM": "xterm-256color"}, {"TERM": "xterm-256color"}, DA1_PLAIN, "xterm-256color",
         "XTerm(390)"),
    Term("silent terminal", {"TERM": "xterm-256color"}, {"TERM": "xterm-256color"}, b"", "xterm-256color", ""),
]  # fmt: skip

SSH = {"SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22", "SSH_TTY": "/dev/pts/3"}
TMUX_ENV = {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,42,0"}


def cell(term: Term, tmux: str, ssh: bool) -> T.Terminal:
    """What vchat decides for one cell of the matrix; tmux is "off", "no passthrough" or "passthrough"."""
    env = dict(term.remote if ssh else term.local)
    if ssh:
        env.update(SSH)
    state = T.TmuxState(tmux == "passthrough", term.tmux_term, term.tmux_type)
    if tmux != "off":
        # Inside tmux the shell sees tmux's TERM; identity variables may linger from the outer shell.
        env.update(TMUX_ENV)

    def query(data: bytes, timeout: float) -> bytes:
        # Inside tmux, tmux answers the query itself (DA1, no graphics of its own here).
        return DA1_PLAIN if tmux != "off" else term.reply

    return T.detect(
        None, env=env, is_tty=True, can_query=True, query=query, tmux_probe=lambda: state, winsize=lambda: SIZE
    )


def shown(result: T.Terminal) -> str:
    """A cell as the matrix prints it: the mode, how it is sent, and whether the user is told something."""
    how = result.mode
    if result.placeholders:
        how += " (Unicode placeholders)"
    elif result.tmux:
        how += " (passthrough)"
    if result.hint:
        how += " + hint"
    return how


EXPECTED = {
    # terminal: (no tmux, tmux without passthrough, tmux with passthrough); the same local and over ssh
    "kitty": ("kitty", "blocks + hint", "kitty (Unicode placeholders)"),
    "Ghostty": ("kitty", "blocks + hint", "kitty (Unicode placeholders)"),
    "WezTerm": ("iterm", "blocks + hint", "iterm (passthrough)"),
    "iTerm2": ("iterm", "blocks + hint", "iterm (passthrough)"),
    "foot": ("sixel", "blocks + hint", "sixel (passthrough)"),
    "xterm (sixel on)": ("sixel", "blocks + hint", "blocks"),
    "xterm (no sixel)": ("blocks", "blocks + hint", "blocks"),
    "silent terminal": ("blocks + hint", "blocks + hint", "blocks"),
}
# Over ssh the identity variables are gone: WezTerm is found by asking (its DA1 lists sixel).
OVER_SSH = {"WezTerm": ("sixel", "blocks + hint", "iterm (passthrough)")}


@pytest.mark.parametrize("term", TERMS, ids=[t.name for t in TERMS])
@pytest.mark.parametrize("ssh", [False, True], ids=["local", "ssh"])
def test_matrix(term: Term, ssh: bool) -> None:
    expected = (OVER_SSH if ssh else {}).get(term.name, EXPECTED[term.name])
    got = tuple(shown(cell(term, tmux, ssh)) for tmux in ("off", "no passthrough", "passthrough"))
    assert got == expected
    for tmux in ("off", "no passthrough", "passthrough"):
        result = cell(term, tmux, ssh)
        assert result.reason.endswith("over ssh") == ssh
        assert result.cell_px == (10, 20)  # from TIOCGWINSZ's pixel size, not a guess
        if tmux == "no passthrough":
            assert result.hint == T.TMUX_HINT


def table() -> str:
    """The matrix as a Markdown table, from the code's own decisions."""
    rows = ["| terminal | where | no tmux | tmux, passthrough off | tmux, passthrough on |", "|---|---|---|---|---|"]
    for term in TERMS:
        for ssh in (False, True):
            cells = [shown(cell(term, tmux, ssh)) for tmux in ("off", "no passthrough", "passthrough")]
            rows.append(f"| {term.name} | {'ssh' if ssh else 'local'} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
