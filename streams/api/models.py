"""``GET /models``: the model versions a worker serves, their examples seen and live metrics.

Every worker answers for itself (models are replicated, not partitioned): the
snapshot version it serves, when the learner made it, how many examples it had
learned, its quality as the learner measured it (:mod:`online_models.quality`),
and how many snapshots this worker refused, by reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install_model_routes(app: Any, describe: Callable[[], dict[str, Any]]) -> None:
    """Register ``GET /models`` on ``app``, answering ``describe()``."""

    @app.page("/models")
    async def models(view: Any, request: Any) -> Any:
        return view.json(describe())


__all__ = ["install_model_routes"]
