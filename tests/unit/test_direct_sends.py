"""Records straight to aiokafka's producer (:mod:`streams.kafka.direct`), on a fake producer."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from streams.kafka.direct import ChangelogWriter, DirectSender
from streams.pipeline.output import Output


class Metadata(NamedTuple):
    topic_partition: tuple[str, int]
    offset: int


class FakeProducer:
    """aiokafka's ``send``: queues a record, returns its delivery future."""

    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.refuse = refuse

    async def send(self, topic: str, value: bytes, **options: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, value, options))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.refuse:
            delivery.set_exception(RuntimeError("MessageSizeTooLarge"))
        else:
            delivery.set_result(Metadata((topic, options["partition"] or 0), len(self.sent) - 1))
        return delivery


class FakeApp:
    def __init__(self, producer: FakeProducer) -> None:
        self.producer = type("FaustProducer", (), {"_ensure_producer": lambda _: producer})()


class FakeStore(dict[bytes, bytes]):
    persisted: dict[Any, int]

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted = {**getattr(self, "persisted", {}), tp: offset}


class FakeTable:
    def __init__(self) -> None:
        self.data = FakeStore()
        name = "users-changelog"
        self.changelog_topic = type("Topic", (), {"get_topic_name": lambda _: name})()


def run(coroutine: Any) -> Any:
    async def and_settle() -> Any:
        result = await coroutine
        await asyncio.sleep(0)  # done callbacks run
        return result

    return asyncio.run(and_settle())


def test_a_record_goes_to_aiokafka_with_its_key_partition_and_headers() -> None:
    producer = FakeProducer()
    sender = DirectSender(FakeApp(producer), on_failure=lambda reason: None)
    run(sender.send(Output("dlq", b"u1", b"{}", {"reason": b"not_json"}, partition=2)))
    assert producer.sent == [
        ("dlq", b"{}", {"key": b"u1", "partition": 2, "headers": [("reason", b"not_json")]})
    ]


def test_a_record_the_broker_refuses_stops_the_worker() -> None:
    failures: list[str] = []
    sender = DirectSender(FakeApp(FakeProducer(refuse=True)), on_failure=failures.append)
    run(sender.send(Output("clean", b"u1", b"[]")))
    assert failures == ["the broker refused a record: RuntimeError: MessageSizeTooLarge"]


def test_a_table_value_is_stored_then_changelogged_in_its_message_s_partition() -> None:
    producer, table = FakeProducer(), FakeTable()
    writer = ChangelogWriter(table, DirectSender(FakeApp(producer), lambda reason: None))
    run(writer.put(b"u1", b"z-state", partition=3))
    assert table.data == {b"u1": b"z-state"}
    assert producer.sent == [
        ("users-changelog", b"z-state", {"key": b"u1", "partition": 3, "headers": None})
    ]
    assert table.data.persisted == {("users-changelog", 3): 0}  # as Faust's RocksDB keeps it
