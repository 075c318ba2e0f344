"""``tunestream worker`` whose dead-letter sends all fail, as a broker refusing them would.

Started by the poison-pill test as ``python tests/integration/dlq_refusing_worker.py worker``;
the fault is injected from outside the product code, which has no hook for it.
"""

from __future__ import annotations

import sys
from typing import Any

from streams.tools.cli import main
from streams.worker import app as app_module

_send = app_module.Worker._send


async def send_or_refuse(self: Any, output: Any) -> None:
    if output.topic == self.settings.dlq_topic:
        raise RuntimeError("injected: the broker refuses the dead letter")
    await _send(self, output)


if __name__ == "__main__":  # never on import: pytest's doctest collection imports this file
    app_module.Worker._send = send_or_refuse  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
