"""What the client tools print: tables (rich on a terminal, plain text otherwise) and
progress lines on stderr.

Figures go to stdout, progress to stderr, so ``tunestream bench --json > out.json``
keeps a clean file; escape codes only ever go to a terminal.

>>> import io
>>> out = io.StringIO()
>>> write_tables([("title", ("name", "value"), [("a", "1")])], out)
>>> print(out.getvalue().strip())
title
name  value
----  -----
a     1
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

#: ``(title, headers, rows)``: one table to print.
Table = tuple[str, Sequence[str], Sequence[Sequence[str]]]


def format_plain(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the headers.

    >>> print(format_plain(("a", "value"), [("long name", "1"), ("b", "22")]))
    a          value
    ---------  -----
    long name  1
    b          22
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))

    lines = [line(headers), line(["-" * width for width in widths])]
    lines.extend(line(row) for row in rows)
    return "\n".join(text.rstrip() for text in lines)


def write_tables(tables: Iterable[Table], out: TextIO, text_columns: Sequence[str] = ()) -> None:
    """``tables`` on ``out``: rich tables on a terminal (numbers right-aligned, except the
    ``text_columns`` and the first), plain text otherwise."""
    tables = list(tables)
    if out.isatty():
        from rich.console import Console
        from rich.table import Table as RichTable

        console = Console(file=out)
        for title, headers, rows in tables:
            table = RichTable(title=title, title_justify="left")
            for index, header in enumerate(headers):
                numeric = index and header not in text_columns
                table.add_column(header, justify="right" if numeric else "left")
            for row in rows:
                table.add_row(*row)
            console.print(table)
        return
    for index, (title, headers, rows) in enumerate(tables):
        if index:
            out.write("\n")
        out.write(f"{title}\n{format_plain(headers, rows)}\n")


class Reporter:
    """Progress on stderr: one line per phase; on a terminal also a live count."""

    def __init__(
        self, stream: TextIO | None = None, enabled: bool = True, prefix: str = "bench"
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.prefix = prefix
        self.live = enabled and self.stream.isatty()
        self._dirty = False

    def phase(self, text: str) -> None:
        self._clear()
        if self.enabled:
            print(f"{self.prefix}: {text}", file=self.stream, flush=True)

    def progress(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r\x1b[2K  {text}")
            self.stream.flush()
            self._dirty = True

    def done(self) -> None:
        """Clear a live progress line."""
        self._clear()

    def _clear(self) -> None:
        if self._dirty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._dirty = False
