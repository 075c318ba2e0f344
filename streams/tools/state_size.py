"""What a user's stored state grows to: the typical active user, and a hyperactive one.

The *typical active user* is the first of 200 simulated listeners to reach
1,000 events on the story clock (:mod:`streams.tools.simulator`): each event
lies as far from the last as the listening does, so 1,000 events span some
weeks, as they would for a heavy listener. The *squeezed user* gets the same
1,000 events within minutes (the stream clock): every event is within the
allowed lateness of many others, so the dedupe memory is full: the bound, not
the typical case.

Each event is ingested as the worker ingests it (:func:`ingest_message`, one
message per event, at its offset in a partition shared with the other users),
and the size is what the changelog stores (:func:`streams.state.codec.encode_state`).

>>> state = typical_user(n_events=50, n_users=5)
>>> state.features.events_seen, 0 < stored_bytes(state) < 2_048
(50, True)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import orjson

from features import TrackInfo
from streams.contracts.events import Event, EventDecoder
from streams.pipeline.ingest import ingest_message
from streams.state.codec import encode_state
from streams.state.keyed_state import UserState
from streams.tools.simulator import Population, PopulationConfig

#: Events of one user folded before their state is measured.
STATE_EVENTS = 1_000
#: The simulated catalog: tracks and artists (as the bench's).
TRACKS = 5_000
ARTISTS = 800


def first_active_user(events: Iterable[Event], n_events: int) -> list[tuple[int, Event]]:
    """The first ``n_events`` events of the first user to reach that many, each with
    its position in ``events`` (its offset in one shared partition).

    >>> stream = [{"user_id": u} for u in "abbcbb"]
    >>> [offset for offset, _ in first_active_user(stream, 3)]
    [1, 2, 4]
    """
    by_user: dict[str, list[tuple[int, Event]]] = defaultdict(list)
    for offset, event in enumerate(events):
        mine = by_user[event["user_id"]]
        mine.append((offset, event))
        if len(mine) == n_events:
            return mine
    raise ValueError(f"no user reached {n_events} events")


def catalog_of(population: Population) -> dict[str, TrackInfo]:
    """The population's tracks as the worker's catalog holds them."""
    return {t.track_id: TrackInfo.from_record(t.to_dict()) for t in population.tracks}


def typical_user(
    n_events: int = STATE_EVENTS, seed: int = 3, n_users: int = 200, clock: str = "story"
) -> UserState:
    """The state of the first simulated user to reach ``n_events``, each event ingested
    as the worker does; ``clock="stream"`` gives the squeezed user."""
    population = Population(
        PopulationConfig(
            seed=seed, n_users=n_users, n_tracks=TRACKS, n_artists=ARTISTS, clock=clock
        )
    )
    catalog = catalog_of(population)
    events = first_active_user(population.events(), n_events)
    last_ts = events[-1][1]["ts"]
    decoder = EventDecoder(now_ms=lambda: last_ts)
    state = UserState.empty()
    for offset, event in events:
        key = event["user_id"].encode()
        ingest_message(decoder, state, key, orjson.dumps(event), offset, catalog.get)
    return state


def stored_bytes(state: UserState) -> int:
    """Bytes the changelog stores for ``state``."""
    return len(encode_state(state.to_state()))
