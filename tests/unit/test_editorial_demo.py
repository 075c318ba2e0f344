"""The demo's editorial sets: derived from the simulated catalog, the same every time."""

from __future__ import annotations

from features import EditorialSet
from streams.tools.editorial_demo import MAX_PICKS, demo_editorial_sets
from streams.tools.simulator import Population, PopulationConfig

HOUR_MS = 3_600_000


def simulated_catalog(seed: int = 7) -> list[dict]:
    config = PopulationConfig(seed=seed, n_users=3, n_tracks=2000, n_artists=285)
    return [track.to_dict() for track in Population(config).tracks]


def test_the_simulated_catalog_gives_its_editorial_tracks_and_a_morning_set() -> None:
    catalog = simulated_catalog()
    picks, morning = demo_editorial_sets(catalog)
    flagged = [r["track_id"] for r in catalog if r["editorial"]]
    assert picks.name == "editors-picks" and picks.title == "Editors' picks"
    assert picks.track_ids == tuple(flagged[:MAX_PICKS]) and picks.boost == 0.05
    assert not (picks.hours or picks.devices or picks.context_types)
    assert morning.name == "morning" and morning.title == "Morning set"
    assert morning.hours == frozenset(range(6, 11)) and morning.boost == 0.1
    assert len(morning.track_ids) == 10 and not set(morning.track_ids) & set(picks.track_ids)
    assert morning.fits(6 * HOUR_MS, None) and not morning.fits(11 * HOUR_MS, None)
    for s in (picks, morning):
        assert EditorialSet.from_record(s.to_record()) == s


def test_the_sets_are_deterministic() -> None:
    assert demo_editorial_sets(simulated_catalog()) == demo_editorial_sets(simulated_catalog())


def test_with_no_track_flagged_the_picks_are_a_handful_spread_over_the_catalog() -> None:
    catalog = [{"track_id": f"t{i}", "editorial": False} for i in range(100)]
    picks, morning = demo_editorial_sets(catalog, handful=4)
    assert picks.track_ids == ("t0", "t25", "t50", "t75")
    assert morning.track_ids == ("t1", "t26", "t51", "t76")
    assert not set(picks.track_ids) & set(morning.track_ids)


def test_blocked_tracks_are_never_picked_and_a_tiny_catalog_gives_fewer_sets() -> None:
    catalog = [
        {"track_id": "t1", "editorial": True, "blocked": True},
        {"track_id": "t2", "editorial": True},
    ]
    assert [(s.name, s.track_ids) for s in demo_editorial_sets(catalog)] == [
        ("editors-picks", ("t2",))
    ]
    assert demo_editorial_sets([]) == []
