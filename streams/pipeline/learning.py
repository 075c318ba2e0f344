"""The worker's side of learning: the models it serves, and one training example per event.

Two objects, both pure (no Kafka):

* :class:`ModelSlot` holds the :class:`~online_models.serving.ServingModels`
  the worker serves. :meth:`ModelSlot.offer` takes a snapshot's bytes, verifies
  the signature *before* decoding anything (:func:`online_models.snapshot.decode_snapshot`),
  builds the models, and swaps them in with one assignment; a refused snapshot
  raises and leaves the previous models serving. An older snapshot than the one
  served (a compacted topic read from its start) is skipped.
* :class:`ExampleMaker` is the ingest hook (:data:`streams.pipeline.ingest.BeforeFold`):
  for each event about to be folded, it builds the training example from the
  user's state before the event, takes the user's own taste step (their vector,
  kept in their state, is fresh after their very event), and collects the
  example for the message's ``training-examples`` records.

Examples go out at most once: only for events folded now (a replay is not
folded again, so it makes no example), after the user's state is written, gathered
across messages by :class:`ExampleBatcher`.

>>> from features import TrackInfo
>>> from streams.state.keyed_state import UserState
>>> catalog = {"t1": TrackInfo("t1", "a1", ("jazz",), 200_000),
...            "t2": TrackInfo("t2", "a2", ("rock",), 200_000)}
>>> slot = ModelSlot(key=None, taste_factors=4, catalog=catalog)
>>> maker = ExampleMaker(slot, catalog, negatives=1)
>>> state, examples = UserState.empty(), []
>>> event = {"event_id": "e1", "type": "save", "track_id": "t1", "ts": 0}
>>> maker.hook(examples)(event, state, catalog["t1"])
>>> [(e.event_id, e.y) for e in examples], state.taste.shape
([('e1', 1)], (4,))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from features import TrackInfo
from online_models.exploration import FeedbackEntry
from online_models.learner import TrainingExample
from online_models.serving import ServingModels
from online_models.snapshot import SnapshotRefused, decode_snapshot
from streams.contracts.events import Event
from streams.pipeline.ingest import BeforeFold
from streams.pipeline.output import Output
from streams.state.keyed_state import UserState

#: Most examples per training-examples record: a batch of 1,000 events must not make
#: one record larger than a producer request (an example is about 1 KB of JSON).
EXAMPLES_PER_RECORD = 100


class ModelSlot:
    """The models a worker serves; replaced whole by each verified, newer snapshot."""

    def __init__(
        self,
        key: bytes | None,
        taste_factors: int = 16,
        catalog: Mapping[str, TrackInfo] | None = None,
        max_bytes: int = 64 * 2**20,
    ) -> None:
        self.key = key
        self.max_bytes = max_bytes
        self.catalog: Mapping[str, TrackInfo] = catalog if catalog is not None else {}
        self.current = ServingModels.untrained(taste_factors)
        self.current.set_catalog(self.catalog)

    def offer(self, blob: bytes) -> bool:
        """Verify, decode and swap in a snapshot; False if it is not newer than the one
        served. Raises :class:`SnapshotRefused` (bad bytes or signature) or
        ``ValueError`` (signed, but not models this worker can serve)."""
        if self.key is None:
            raise SnapshotRefused("bad_signature", "this worker has no snapshot key to verify it")
        snapshot = decode_snapshot(blob, self.key, max_bytes=self.max_bytes)
        if snapshot.created_at_ms <= self.current.created_at_ms:
            return False
        models = ServingModels.from_snapshot(snapshot)
        models.set_catalog(self.catalog)
        models.warm()  # its arrays built now, not by the first list after the swap
        self.current = models  # one assignment: a message sees the old models or the new
        return True

    def track_known(self, track_id: str, info: TrackInfo) -> None:
        """A catalog record arrived: the served taste model learns the track's parts."""
        self.current.set_catalog({track_id: info})


class ExampleMaker:
    """Builds each folded event's training example and takes the user's taste step."""

    def __init__(
        self, slot: ModelSlot, catalog: Mapping[str, TrackInfo], negatives: int = 4
    ) -> None:
        self.slot = slot
        self.catalog = catalog
        self.negatives = negatives
        self._track_ids: list[str] = []

    def catalog_changed(self) -> None:
        """Draw negatives from the catalog as it now stands."""
        self._track_ids = []

    def hook(self, into: list[TrainingExample]) -> BeforeFold:
        """The ingest hook for one message, appending its examples to ``into``."""

        def before_fold(event: Event, state: UserState, track: TrackInfo | None) -> None:
            into.append(self.fold(event, state, track))

        return before_fold

    def fold(self, event: Event, state: UserState, track: TrackInfo | None) -> TrainingExample:
        """The example of ``event`` (``state`` is from before it); the user's vector steps."""
        if not self._track_ids and self.catalog:
            self._track_ids = list(self.catalog)
        example, vector = self.slot.current.example(
            state.features, event, track, state.taste, self._track_ids, self.negatives
        )
        state.taste = vector.astype(np.float32)
        return example


class ExampleBatcher:
    """Gathers the examples (and exploration feedback) of many messages into few
    ``training-examples`` records (see :func:`online_models.learner.read_record`).

    A record per message would cost the worker a producer send per message (as much
    as the examples themselves); examples are sent at most once anyway, so they wait
    here until :data:`EXAMPLES_PER_RECORD` are gathered or the caller's timer calls
    :meth:`drain` (and at shutdown). A crash loses what waits: at most one record, or
    one timer period, of examples. Records have no key (the learner reads positions,
    not keys): the producer spreads them over the partitions.

    >>> batcher = ExampleBatcher("examples", per_record=2)
    >>> example = TrainingExample("e1", {}, 1, "t1", [0.0])
    >>> batcher.add([example]), len(batcher.add([example, example]))
    ([], 1)
    >>> [len(orjson.loads(output.value)) for output in batcher.drain()]
    [1]
    """

    def __init__(self, topic: str, per_record: int = EXAMPLES_PER_RECORD) -> None:
        self.topic = topic
        self.per_record = per_record
        self._waiting: list[Any] = []

    def add(
        self, examples: list[TrainingExample], feedback: Sequence[FeedbackEntry] = ()
    ) -> list[Output]:
        """Take ``examples`` and exploration ``feedback``; the records now full, to send."""
        self._waiting += [example.to_record() for example in examples]
        self._waiting += [list(entry) for entry in feedback]  # [arm, old, new]
        full: list[Output] = []
        while len(self._waiting) >= self.per_record:
            full.append(self._record(self._waiting[: self.per_record]))
            del self._waiting[: self.per_record]
        return full

    def drain(self) -> list[Output]:
        """Whatever waits, as one record (none if nothing waits)."""
        if not self._waiting:
            return []
        waiting, self._waiting = self._waiting, []
        return [self._record(waiting)]

    def _record(self, records: list[Any]) -> Output:
        return Output(self.topic, None, orjson.dumps(records))


__all__ = ["EXAMPLES_PER_RECORD", "ExampleBatcher", "ExampleMaker", "ModelSlot"]
