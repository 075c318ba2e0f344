"""``GET /users/{user_id}/recommendations[?explain=1]``, answered by the user's owner.

The owner answers with the last list it published for the user, the very
record on the ``recommendations`` topic. It keeps the latest lists of the
users it served most recently (``TUNESTREAM_LISTS_REMEMBERED``, least recently
used dropped first; cleared on a rebalance); for any other user the answer is
404, and the topic's compacted record is the list.

``?explain=1`` adds ``explain``: the list rebuilt from the user's current
state with the models served now, for the same triggering event, with every
candidate's scores per stage (retrieval, taste, engagement, boost, blended
score, MMR) and its fate (its slot, ``removed: <rule>`` or ``not chosen``).
``explain.same_as_published`` says whether the rebuilt list equals the
published one; it differs when a newer snapshot arrived since, a later event
of the user went by without a new list, or the trending ranking moved (the
list's own event reaches it about a publish interval later).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streams.api.features import routed

#: ``explain`` query values that ask for the explanation.
EXPLAIN_ON = frozenset({"1", "true", "yes"})


def install_recommendation_routes(
    app: Any,
    users: Any,
    last_list: Callable[[str], bytes | None],
    explain: Callable[[str], dict[str, Any] | None],
) -> None:
    """Register the route: ``last_list(user_id)`` is the published record (encoded),
    ``explain(user_id)`` the rebuilt list's explanation."""

    @app.page("/users/{user_id}/recommendations")
    @routed(app, users, "user_id")
    async def recommendations(view: Any, request: Any, user_id: str) -> Any:
        record = last_list(user_id)
        if record is None:
            body = {"error": f"no list of user {user_id!r} since this worker took them over"}
            return view.json(body, status=404)
        if request.query.get("explain", "").lower() not in EXPLAIN_ON:
            return view.bytes(record, content_type="application/json")
        answer = orjson.loads(record)
        answer["explain"] = explain(user_id)
        return view.json(answer)


__all__ = ["EXPLAIN_ON", "install_recommendation_routes"]
