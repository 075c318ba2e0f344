"""``GET /users/{id}/features`` and ``GET /tracks/{id}/features``, answered by the key's owner.

Any worker accepts the request; Faust's table routing forwards it to the worker
that owns the key's partition. Before the group has assigned partitions the
owner is unknown, and the answer is 503 "retry" rather than a 500.
The bodies are built by :func:`user_features_body` and :func:`track_features_body`
from the stored state (versioned JSON; deflated for users, :mod:`streams.state.codec`),
so they are testable without Faust.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from features import UserFeatureConfig
from streams.contracts.clock import now_ms
from streams.state.codec import decode_state
from streams.state.keyed_state import TrackState, UserState

Handler = Callable[..., Awaitable[Any]]


def user_features_body(
    user_id: str,
    stored: bytes,
    at_ms: int,
    dedupe_capacity: int = 256,
    config: UserFeatureConfig | None = None,
) -> dict[str, Any]:
    """What the API answers for one user's stored state, read at ``at_ms``."""
    state = UserState.from_state(decode_state(stored), dedupe_capacity, config)
    features = state.features.read(at_ms)
    return {"user_id": user_id, "as_of_ms": at_ms, **features, "recent_tracks": state.recent_tracks}


def track_features_body(
    track_id: str,
    stored: bytes | dict[str, Any],
    at_ms: int,
    popularity_half_life_s: float = 3600.0,
) -> dict[str, Any]:
    """What the API answers for one track's stored statistics, read at ``at_ms``."""
    features = TrackState.from_stored(stored, popularity_half_life_s).features.read(at_ms)
    return {"track_id": track_id, "as_of_ms": at_ms, **features}


def routed(app: Any, table: Any, match_info: str) -> Callable[[Handler], Handler]:
    """Faust's table routing, answering 503 while the owner is not yet known."""

    def decorate(handler: Handler) -> Handler:
        forwarded = app.table_route(table=table, match_info=match_info)(handler)

        async def answer(view: Any, request: Any, **kwargs: Any) -> Any:
            try:  # only the owner lookup: a handler's own error must stay a 500
                app.router.key_store(table.name, kwargs[match_info])
            except (TypeError, KeyError):
                body = {"error": "this worker does not know the key's owner yet; retry"}
                return view.json(body, status=503)
            return await forwarded(view, request, **kwargs)

        return answer

    return decorate


def install_feature_routes(
    app: Any,
    users: Any,
    tracks: Any,
    dedupe_capacity: int,
    config: UserFeatureConfig,
    popularity_half_life_s: float,
) -> None:
    """Register both routes on ``app`` over the ``users`` and ``tracks`` tables."""

    @app.page("/users/{user_id}/features")
    @routed(app, users, "user_id")
    async def user_features(view: Any, request: Any, user_id: str) -> Any:
        stored = users.get(user_id.encode())
        if stored is None:
            return view.json({"error": f"no state for user {user_id!r}"}, status=404)
        return view.json(user_features_body(user_id, stored, now_ms(), dedupe_capacity, config))

    @app.page("/tracks/{track_id}/features")
    @routed(app, tracks, "track_id")
    async def track_features(view: Any, request: Any, track_id: str) -> Any:
        stored = tracks.get(track_id.encode())
        if stored is None:
            return view.json({"error": f"no statistics for track {track_id!r}"}, status=404)
        body = track_features_body(track_id, stored, now_ms(), popularity_half_life_s)
        return view.json(body)


__all__ = [
    "install_feature_routes",
    "routed",
    "track_features_body",
    "user_features_body",
]
