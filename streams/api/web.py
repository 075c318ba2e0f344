"""The worker's HTTP surface: only tunestream's own endpoints, and JSON errors everywhere.

Faust serves a few built-in pages of its own: ``/router/`` (which worker owns
which partition), ``/table/...`` (raw table contents, keyed by anything) and an
index at ``/``. They expose internals and are documented nowhere, so a worker
serves none of them. Every error, including aiohttp's own 404 and 405 pages,
is answered as ``{"error": "..."}`` with the right status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("tunestream.web")

#: Faust's built-in blueprints a worker does not serve (the app settings turn off the rest).
FAUST_INDEX = "faust.web.apps.production_index:blueprint"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's plain-text errors and unexpected exceptions into JSON bodies."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status, headers=_allow(exc))
    except Exception:
        log.exception("HTTP handler failed for %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)
    return response


def _allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


def without_faust_internals(app: Any) -> None:
    """Drop Faust's index page from the blueprints the web server will mount."""
    blueprints = app.web.blueprints
    blueprints._enabled = [(p, bp) for p, bp in blueprints._enabled if bp != FAUST_INDEX]


def faust_web_options() -> dict[str, Any]:
    """Arguments to :class:`faust.App` that shape the web server as described above."""
    return {
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_stats_enabled": False,
        "web_application_options": {"middlewares": [json_errors]},
    }
