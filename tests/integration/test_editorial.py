"""Editorial sets reach the compacted editorial topic, keyed by set name, and read back.

Timeline::

    tunestream editorial sets.jsonl (picks, morning) ──► editorial-sets
    publish_editorial (picks, replaced) ──────────────► editorial-sets
    read from the beginning, fold by key ──► the replaced picks and the morning set
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from features import EditorialSet, EditorialSets
from streams.settings import Settings
from streams.tools.cli import main
from streams.tools.publish import publish_editorial
from tests.integration.harness import TopicReader

pytestmark = pytest.mark.integration

PICKS = EditorialSet("editors-picks", ("t1", "t2", "t3"), title="Editors' picks")
MORNING = EditorialSet(
    "morning",
    ("t4", "t5"),
    boost=0.15,
    hours=frozenset(range(6, 11)),
    devices=frozenset({"mobile"}),
    title="Morning coffee",
)


def test_a_published_file_reads_back_keyed_by_name_and_a_later_set_replaces_it(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sets.jsonl"
    path.write_bytes(b"".join(orjson.dumps(s.to_record()) + b"\n" for s in (PICKS, MORNING)))
    argv = ["editorial", str(path), "--broker", settings.bootstrap_servers]
    assert main([*argv, "--editorial-topic", settings.editorial_topic]) == 0
    assert capsys.readouterr().err.strip() == (
        f"published 2 editorial sets to {settings.editorial_topic}"
    )
    replaced = EditorialSet("editors-picks", ("t9",), boost=0.3)

    async def scenario() -> list[tuple[str, EditorialSet]]:
        assert await publish_editorial(settings, [replaced]) == 1
        async with TopicReader(settings, settings.editorial_topic) as reader:
            topic = settings.editorial_topic
            await reader.until(lambda: len(reader.records[topic]) >= 3, 15, "3 editorial records")
        return [
            (r.key.decode(), EditorialSet.from_record(r.value))
            for r in reader.records[settings.editorial_topic]
        ]

    records = asyncio.run(scenario())
    assert sorted(key for key, _ in records) == ["editors-picks", "editors-picks", "morning"]
    assert all(key == s.name for key, s in records)
    assert {s for _, s in records} == {PICKS, MORNING, replaced}
    live = EditorialSets()
    # One partition per key keeps a set's records in order: the last one read wins.
    for _, editorial_set in records:
        live.put(editorial_set)
    assert list(live) == [replaced, MORNING]
    assert asyncio.run(_cleanup_policy(settings)) == "compact"


async def _cleanup_policy(settings: Settings) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, settings.editorial_topic)
        (response,) = await admin.describe_configs([resource])
        *_, entries = response.resources[0]  # config entries come last in every version
        return next(value for name, value, *_ in entries if name == "cleanup.policy")
    finally:
        await admin.close()
