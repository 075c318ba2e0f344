"""The track catalog reaches every worker from its compacted topic and names the artists.

Timeline::

    catalog: t0 (a0) ... t4 (a4) ──► worker reads it all ──► ready
    events on t0..t4 ──► recommendation items carry artist_id from the catalog
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import orjson
import pytest

from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.tools.publish import publish_catalog
from tests.factories import make_event
from tests.integration.harness import TopicReader, WorkerProcess, until_a_list_has_items

pytestmark = pytest.mark.integration


def test_items_name_the_artist_from_the_catalog_and_the_owner_serves_user_features(
    settings: Settings, worker: WorkerProcess
) -> None:
    tracks = [
        {"track_id": f"t{i}", "artist_id": f"a{i}", "genres": ["pop"], "duration_ms": 200_000}
        for i in range(5)
    ]

    async def scenario() -> list[dict]:
        await publish_catalog(settings, tracks)
        async with (
            TopicReader(settings, settings.recommendations_topic) as reader,
            EventProducer(settings.bootstrap_servers, settings.events_topic) as producer,
        ):
            worker.start()
            for wave in range(2):  # the second wave's lists know every track's popularity
                now = int(time.time() * 1000)
                for i in range(10):
                    user, track = f"u{i % 5}", f"t{i % 5}"  # each user hears one track
                    event_id = f"e{wave}-{i}"
                    await producer.publish(
                        make_event(event_id=event_id, user_id=user, track_id=track, ts=now)
                    )
                await producer.flush()
                await asyncio.sleep(1.0)
            topic = settings.recommendations_topic
            await until_a_list_has_items(settings, reader, worker=worker)
            return [item for r in reader.records[topic] for item in r.value["items"]]

    items = asyncio.run(scenario())
    assert items and all(item["artist_id"] == "a" + item["track_id"][1:] for item in items)

    status, body = worker.get("/users/u1/features")
    assert status == 200 and orjson.loads(body)["user_id"] == "u1"
    assert worker.get("/users/nobody/features")[0] == 404
    cli = subprocess.run(
        [sys.executable, "-m", "streams", "features", "u1", "--web-port", str(worker.web_port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0 and orjson.loads(cli.stdout)["user_id"] == "u1", cli.stderr
