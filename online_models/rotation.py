"""Back in rotation: the listener's own tracks, rested long enough to be welcome again.

A list is for what to hear next, so a track the user heard or liked within
``replay_after_s`` stays out of it (the ``recently_played`` removal of
:mod:`online_models.reranking`). But listeners do come back to what they love:
on the simulator's stream a third of the positive events are of a track the
listener still remembers hearing (their last 20 plays or 12 liked tracks), most
of them minutes to hours later. Past the rest, such a track is one of the
likeliest things to be heard next, and the most honest to explain ("you played
it 2 hours ago").

The ``rotation`` retrieval source (:mod:`online_models.retrieval`) proposes
:func:`rested_tracks`, and the re-ranking lets at most ``max_rotation`` of them
into one list (the ``rotation_cap``), so a list stays mostly new to the ear.
Only what :class:`features.UserFeatures` already remembers is read: the source
costs O(20 + 12) and keeps nothing.

>>> from features import TrackInfo, UserFeatures
>>> user = UserFeatures()
>>> for ts, track in ((0, "t1"), (600_000, "t2"), (3_000_000, "t3")):
...     _ = user.update({"type": "play", "track_id": track, "ts": ts, "ms_played": 200_000},
...                     TrackInfo(track, "a1", ("pop",), 200_000))
>>> rested_tracks(user, ts_ms=3_600_000, rest_s=1_200.0)  # t3 was heard 10 minutes ago
[('t2', 600000), ('t1', 0)]
>>> heard_ago(3_600_000 - 600_000)
'50 minutes ago'
"""

from __future__ import annotations

from features import UserFeatures

_MINUTE_MS = 60_000
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS


def rested_tracks(user: UserFeatures, ts_ms: int, rest_s: float) -> list[tuple[str, int]]:
    """The tracks ``user`` played or liked, each with when it was last heard or liked,
    if that is more than ``rest_s`` before ``ts_ms``; the most recently heard first
    (ties: by track id, so the order never depends on the maps' order)."""
    last: dict[str, int] = {}
    for times in (user.track_last_ms, user.track_liked_ms):
        for track_id, at in times.items():
            if at > last.get(track_id, at - 1):
                last[track_id] = at
    since = ts_ms - rest_s * 1000
    rested = [(track_id, at) for track_id, at in last.items() if at < since]
    return sorted(rested, key=lambda pair: (-pair[1], pair[0]))


def heard_ago(age_ms: float) -> str:
    """How long ago, in the words of a reason: minutes, hours, then days.

    >>> heard_ago(90_000), heard_ago(2 * 3_600_000), heard_ago(30 * 3_600_000)
    ('1 minute ago', '2 hours ago', '1 day ago')
    """
    for unit_ms, unit in ((_DAY_MS, "day"), (_HOUR_MS, "hour")):
        if age_ms >= unit_ms:
            count = int(age_ms // unit_ms)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    count = max(1, int(age_ms // _MINUTE_MS))
    return f"{count} minute{'s' if count > 1 else ''} ago"


__all__ = ["heard_ago", "rested_tracks"]
