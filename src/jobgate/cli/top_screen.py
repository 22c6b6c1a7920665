"""Where ``jobgate top`` draws: a full-screen view in a terminal (:class:`Screen`, drawn
by rich's ``Live`` on the alternate screen, so the shell's screen comes back as it was),
or plain blocks of text or JSON lines on anything else (:class:`Plain`: no escape code
at all). The lines themselves are :mod:`jobgate.cli.top_layout`'s.

rich is imported here only, when a screen is opened: nothing on the hook's path (nor
``jobgate status``) loads it.
"""

from __future__ import annotations

import os
import sys
import time

from jobgate.cli import render, top_layout
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    import io
    from typing import Any

#: how each kind of line is drawn (rich style names)
STYLES = {
    top_layout.TITLE: "bold",
    top_layout.HEADER: "bold reverse",
    top_layout.NOTE: "dim",
    top_layout.FOOTER: "reverse",
    top_layout.LOST: "bold red",
    model.RUNNING: "green",
    model.QUEUED: "yellow",
    model.FAILED: "red",
    model.CANCELLED: "magenta",
    model.COMPLETED: "",
}
HINT = "q: quit"

#: in a JSON line, the characters json.dumps leaves raw that a terminal may act on, or
#: that a reader splitting on Unicode line breaks would cut the line at (as ``watch``'s)
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029)}
#: an undecodable byte kept by :func:`~jobgate.cli.render.clean` (U+DCA0..U+DCFF): shown
#: as U+FFFD on the screen, one column as it was counted
_SURROGATES = {c: "\ufffd" for c in range(0xDC80, 0xDD00)}


class Plain:
    """Stdout is not a terminal: a block of plain lines (or, with ``as_json``, one JSON
    object a line) each time the view changes — the jobs, their status, queue places or
    last lines; not the clock or the elapsed times alone."""

    def __init__(self, root: str, *, as_json: bool) -> None:
        self.root = root
        self.as_json = as_json
        self._last: tuple[Any, ...] | None = None

    def __enter__(self) -> Plain:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def suspend(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def show(self, jobs: list[model.Job], last_lines: dict[str, str], note: str) -> None:
        mark = (top_layout.signature(jobs, last_lines), note)
        if mark == self._last:
            return
        self._last = mark
        now = time.time()
        if self.as_json:
            from jobgate.state.fileio import json_text

            obj = top_layout.as_json(jobs, last_lines, root=self.root, now=now)
            if note:
                obj["warning"] = note
            text = json_text(obj, separators=(",", ":")).translate(_JSON_ESCAPES) + "\n"
        else:
            from jobgate.cli.render import terminal_columns

            lines = top_layout.screen(
                jobs,
                last_lines,
                root=self.root,
                clock=model.now_iso(now),
                now=now,
                width=terminal_columns(),
                note=note,
            )
            text = "\n".join(line.text for line in lines) + "\n\n"
        sys.stdout.write(text)
        sys.stdout.flush()


class Screen:
    """A full-screen view on the terminal that stdout is: the alternate screen, no
    cursor, redrawn in place at the terminal's current size on each :meth:`show`.
    Warnings written to stderr meanwhile are shown in the view and printed when it
    closes (written to the terminal, they would tear the screen)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._live: Any = None
        self._console: Any = None
        self._stderr: Any = None
        self._caught: io.StringIO | None = None

    def __enter__(self) -> Screen:
        import io

        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=sys.stdout)
        self._live = Live(
            console=self._console,
            screen=True,
            auto_refresh=False,  # drawn by show() only: no thread of rich's own
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._caught = io.StringIO()
        self._stderr, sys.stderr = sys.stderr, self._caught
        try:
            self._live.start()
        except BaseException:
            sys.stderr = self._stderr
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._live is not None:
                self._live.stop()  # the alternate screen left, the cursor shown again
        finally:
            if self._stderr is not None:
                sys.stderr = self._stderr
                caught = self._caught.getvalue() if self._caught is not None else ""
                if caught:
                    try:
                        sys.stderr.write(caught)
                        sys.stderr.flush()
                    except (OSError, ValueError):
                        pass

    def suspend(self) -> None:
        """Give the terminal back for a while (Ctrl-Z): the shell's screen, the cursor."""
        self._live.stop()

    def resume(self) -> None:
        self._live.vertical_overflow = "ellipsis"  # (stop() left it "visible")
        self._live.start()

    def size(self) -> tuple[int, int]:
        """The terminal's columns and lines now (read afresh: it may have been resized)."""
        try:
            cols, rows = os.get_terminal_size(sys.stdout.fileno())
        except (OSError, ValueError):
            cols, rows = 80, 24
        return max(1, cols), max(1, rows)

    def show(self, jobs: list[model.Job], last_lines: dict[str, str], note: str) -> None:
        from rich.text import Text

        if not note and self._caught is not None:
            caught = self._caught.getvalue().strip().splitlines()
            note = caught[-1] if caught else ""
        cols, rows = self.size()
        self._console.size = (cols, rows)  # not $COLUMNS/$LINES as rich would read them
        now = time.time()
        lines = top_layout.screen(
            jobs,
            last_lines,
            root=self.root,
            clock=time.strftime("%H:%M:%S", time.localtime(now)),
            now=now,
            width=cols,
            height=rows,
            hint=HINT,
            note=note,
        )
        text = Text(no_wrap=True, overflow="crop", end="")
        for i, line in enumerate(lines):
            if i:
                text.append("\n")
            shown = line.text.translate(_SURROGATES)
            if line.style in (top_layout.HEADER, top_layout.FOOTER):
                shown += " " * (cols - render.columns(shown))  # a full-width bar
            text.append(shown, style=STYLES.get(line.style, ""))
        self._live.update(text, refresh=True)
