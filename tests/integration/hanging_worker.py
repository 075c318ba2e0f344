"""``tunestream worker`` whose agent hangs on any message holding the text ``hang-here``.

Started by the liveness test as ``python tests/integration/hanging_worker.py worker``:
the fault is injected from outside the product code, which has no hook for it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from streams.tools.cli import main
from streams.worker import app as app_module

_handle = app_module.Worker.handle


async def handle_or_hang(self: Any, key: Any, value: Any, source: Any) -> None:
    if value is not None and b"hang-here" in value:
        await asyncio.Event().wait()  # never set: the agent is stuck on this message
    await _handle(self, key, value, source)


if __name__ == "__main__":  # never on import: pytest's doctest collection imports this file
    app_module.Worker.handle = handle_or_hang  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
