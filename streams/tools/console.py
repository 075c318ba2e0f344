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
from typing import Any, TextIO

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


def list_table(record: dict[str, Any]) -> str:
    """A published list (the ``recommendations`` record) as plain text: a header line,
    then one row per item.

    >>> record = {"user_id": "u1", "model_version": "rerank-v1", "latency_ms": 12,
    ...           "trigger_event_id": "e9", "items": [{"track_id": "t1", "artist_id": "a1",
    ...           "score": 0.61, "source": "trending", "reason": "popular right now"}]}
    >>> print(list_table(record))
    u1: 1 items by rerank-v1, 12 ms after event e9
    #  track  artist  source    score  reason
    -  -----  ------  --------  -----  -----------------
    1  t1     a1      trending  0.610  popular right now
    """
    head = (
        f"{record['user_id']}: {len(record['items'])} items by {record['model_version']}, "
        f"{record['latency_ms']} ms after event {record['trigger_event_id']}"
    )
    rows = [
        (
            str(rank),
            item["track_id"],
            item["artist_id"] or "?",
            item["source"],
            f"{item['score']:.3f}",
            item["reason"],
        )
        for rank, item in enumerate(record["items"], 1)
    ]
    return head + "\n" + format_plain(("#", "track", "artist", "source", "score", "reason"), rows)


def explain_table(explain: dict[str, Any]) -> str:
    """The ``explain`` part of ``GET /users/{id}/recommendations?explain=1`` as plain
    text: every candidate, best score first, with its scores per stage and its fate."""
    same = "the same as" if explain["same_as_published"] else "different from"
    times = ", ".join(f"{stage} {s * 1e6:.0f} µs" for stage, s in explain["stage_seconds"].items())
    head = (
        f"rebuilt now by {explain['model_version']}: {same} the published list; "
        f"{len(explain['candidates'])} candidates; {times}"
    )
    candidates = sorted(
        explain["candidates"], key=lambda c: (c["rank"] is None, c["rank"] or 0, -c["score"])
    )
    rows = [
        (
            c["track_id"],
            c["source"],
            f"{c['retrieval']:.3f}",
            f"{c['taste']:.3f}",
            f"{c['engagement']:.3f}",
            f"{c.get('affinity', 0.0):.3f}",
            f"{c['boost']:.2f}",
            f"{c['score']:.3f}",
            "" if c["mmr"] is None else f"{c['mmr']:.3f}",
            c["fate"] if c["rank"] is None else f"#{c['rank']} {c['fate']}",
        )
        for c in candidates
    ]
    headers = (
        "track",
        "source",
        "retrieval",
        "taste",
        "engage",
        "diet",
        "boost",
        "score",
        "mmr",
        "fate",
    )
    return head + "\n" + format_plain(headers, rows)
