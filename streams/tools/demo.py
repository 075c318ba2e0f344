"""``tunestream demo``: a broker, a worker and a simulated population, watched live.

With no configuration it starts the embedded Tansu broker on a free loopback
port, a worker process, and the seeded simulator (a few malformed events
included, to show the dead-letter topic), then shows throughput, freshness and
the newest recommendation lists, two users' lists in full (artist, source and
reason of each item, tracks new since their last list marked), until
``--duration`` ends or Ctrl-C. Everything
it started is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.contracts.clock import now_ms as wall_clock_ms
from streams.kafka.security import security_options
from streams.settings import Settings
from streams.tools.console import list_table
from streams.tools.local_pipeline import local_pipeline
from streams.tools.publish import simulate

#: Users whose lists the demo shows in full, as they change.
FOLLOWED_USERS = 2


@dataclass
class DemoView:
    """What the live view shows; fed by the simulator and a consumer of the outputs."""

    started: float = field(default_factory=time.monotonic)
    published: int = 0
    forwarded: int = 0
    lists: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[int] = field(default_factory=lambda: deque(maxlen=500))
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent_published: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=50))
    model_version: str = ""
    #: the users whose lists are shown in full (the first to get one), their latest
    #: list, how many they had, and the tracks their list before held
    followed: dict[str, dict[str, Any]] = field(default_factory=dict)
    followed_lists: Counter[str] = field(default_factory=Counter)
    previous_tracks: dict[str, set[str]] = field(default_factory=dict)

    def on_output(self, topic: str, value: bytes, settings: Settings) -> None:
        record = orjson.loads(value)
        if topic == settings.recommendations_topic:
            self.lists += 1
            self.latencies_ms.append(record["latency_ms"])
            self.latest[record["user_id"]] = record
            self.model_version = record["model_version"]
            while len(self.latest) > 6:
                self.latest.pop(next(iter(self.latest)))
            self._follow(record)
        elif topic == settings.clean_topic:
            self.forwarded += len(record)
        else:
            self.dead_letters[record["reason"]] += 1

    def _follow(self, record: dict[str, Any]) -> None:
        user = record["user_id"]
        if user not in self.followed and len(self.followed) >= FOLLOWED_USERS:
            return
        if user in self.followed:
            self.previous_tracks[user] = {i["track_id"] for i in self.followed[user]["items"]}
        self.followed[user] = record
        self.followed_lists[user] += 1

    def rate(self) -> float:
        now = time.monotonic()
        self.recent_published.append((now, self.published))
        then, count = self.recent_published[0]
        return (self.published - count) / (now - then) if now > then else 0.0

    def percentile(self, q: float) -> int | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        p50, p99 = self.percentile(0.5), self.percentile(0.99)
        dlq = sum(self.dead_letters.values())
        return (
            f"{time.monotonic() - self.started:5.0f}s  published {self.published}  "
            f"forwarded {self.forwarded}  dead-lettered {dlq}  lists {self.lists}  "
            f"latency p50/p99 {p50}/{p99} ms  model {self.model_version or '-'}"
        )

    def render(self, broker: str) -> Group:
        stats = Table.grid(padding=(0, 2))
        stats.add_row("broker", broker, "events/s", f"{self.rate():,.0f}")
        stats.add_row("published", f"{self.published:,}", "forwarded", f"{self.forwarded:,}")
        dlq = ", ".join(f"{r}={n}" for r, n in self.dead_letters.most_common(4)) or "-"
        stats.add_row("lists", f"{self.lists:,}", "dead-lettered", dlq)
        p50, p99 = self.percentile(0.5), self.percentile(0.99)
        stats.add_row("latency p50", f"{p50} ms", "latency p99", f"{p99} ms")
        lists = Table(title="newest recommendation lists", expand=True)
        for column in ("user", "model", "age", "top tracks"):
            lists.add_column(column)
        now_ms = wall_clock_ms()
        for user, record in reversed(self.latest.items()):
            tracks = " ".join(item["track_id"] for item in record["items"][:6])
            age = f"{(now_ms - record['generated_at']) / 1000:.1f}s"
            lists.add_row(user, record["model_version"], age, tracks)
        if not self.latest:
            lists.add_row("-", "-", "-", "waiting for the worker to join the group (~5 s)")
        followed = [self._followed_table(user, now_ms) for user in self.followed]
        return Group(Text("tunestream demo  (Ctrl-C stops)", style="bold"), stats, lists, *followed)

    def _followed_table(self, user: str, now_ms: int) -> Table:
        """One followed user's latest list in full; ``+`` marks tracks new since the last."""
        record, before = self.followed[user], self.previous_tracks.get(user)
        age = (now_ms - record["generated_at"]) / 1000
        table = Table(
            title=f"{user}: list {self.followed_lists[user]}, {age:.1f}s ago, "
            f"{record['model_version']}",
            title_justify="left",
            expand=True,
        )
        for column in ("", "track", "artist", "source", "reason"):
            table.add_column(column, no_wrap=column != "reason")
        for item in record["items"]:
            new = before is not None and item["track_id"] not in before
            table.add_row(
                "+" if new else "",
                item["track_id"],
                item["artist_id"] or "?",
                item["source"],
                item["reason"],
                style="green" if new else None,
            )
        return table

    def followed_text(self) -> str:
        """The followed users' latest lists, as plain text (printed at the end)."""
        return "\n\n".join(list_table(record) for record in self.followed.values())


async def _watch(settings: Settings, view: DemoView, stop: asyncio.Event) -> None:
    topics = (settings.recommendations_topic, settings.clean_topic, settings.dlq_topic)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        **security_options(settings),
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    try:
        await consumer.start()  # inside: a consumer that failed to start is closed too
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    view.on_output(record.topic, record.value, settings)
    finally:
        await consumer.stop()


async def _display(view: DemoView, broker: str, stop: asyncio.Event, console: Console) -> None:
    if console.is_terminal:
        with Live(view.render(broker), console=console, refresh_per_second=4) as live:
            while not stop.is_set():
                await asyncio.sleep(0.25)
                live.update(view.render(broker))
    else:
        while not stop.is_set():
            await asyncio.sleep(5)
            console.print(view.summary(), soft_wrap=True)


async def _run(
    settings: Settings,
    view: DemoView,
    duration_s: float | None,
    rate: float,
    users: int,
    seed: int,
    bad_ratio: float,
    console: Console,
) -> None:
    stop = asyncio.Event()

    def count(_: Any) -> None:
        view.published += 1

    async def produce() -> None:
        await simulate(
            settings,
            rate=rate,
            duration_s=duration_s,
            users=users,
            seed=seed,
            bad_ratio=bad_ratio,
            on_event=count,
            show_progress=False,
        )
        await asyncio.sleep(1.0)  # the last lists are on their way
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks = [
        asyncio.create_task(c)
        for c in (
            produce(),
            _watch(settings, view, stop),
            _display(view, settings.broker, stop, console),
        )
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_demo(
    settings: Settings,
    *,
    duration_s: float | None = None,
    rate: float = 300.0,
    users: int = 500,
    seed: int = 7,
    bad_ratio: float = 0.005,
) -> int:
    """Run the demo; 0 if recommendation lists arrived, 1 otherwise."""
    console = Console()
    view = DemoView()

    def say_key_made() -> None:
        console.print(
            "local mode: generated a snapshot signing key for this run "
            "(production sets TUNESTREAM_SNAPSHOT_KEY or TUNESTREAM_SNAPSHOT_KEY_FILE)"
        )

    console.print("creating topics, starting a learner and a worker ...")
    with local_pipeline(settings, ready=False, on_new_key=say_key_made) as pipeline:
        worker, settings = pipeline.worker, pipeline.settings
        url = f"http://127.0.0.1:{settings.web_port}"
        console.print(f"broker {settings.broker}; worker at {url}")
        console.print(f"while it runs: tunestream recs USER --url {url} --explain")
        asyncio.run(_run(settings, view, duration_s, rate, users, seed, bad_ratio, console))
        console.print(view.summary(), soft_wrap=True)
        console.print(view.followed_text(), markup=False, highlight=False, soft_wrap=True)
        if view.lists == 0:
            console.print(
                f"no recommendation list arrived; worker log tail:\n{worker.log_tail()}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return 1
    return 0
