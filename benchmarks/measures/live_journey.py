"""``journey_live``: one journey of 100,000 touchpoints through a real worker and broker.

The long journey's touchpoints (`journeys.page_views`, one person, in order) are published to
a fresh deployment, and one worker folds them. Measured once the journey in Redis holds them
all: the largest message the worker wrote to its journeys changelog (``journey_live_entry_max
_bytes``, against the cap: `journey_live_over_cap`), how many of its entries were segments,
the bytes it wrote to the changelog per touchpoint, and how long the worker took.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.codec import journey_cap
from benchmarks.context import Context, Result
from benchmarks.deployment import Deployment
from benchmarks.journeys import LONG_JOURNEY_EMAIL, page_views
from benchmarks.worker import start_worker, wait_ready
from streams import journey as core
from streams.projection import JourneyProjection
from streams.workflow.codec import is_segment_key

PUBLISH_CHUNK = 10_000


async def _held(deployment: Deployment, customer_id: str) -> int:
    projection = JourneyProjection.from_url(
        deployment.settings.redis_url, deployment.settings.redis_prefix
    )
    try:
        snapshot = await projection.snapshot(customer_id)
    finally:
        await projection.close()
    return 0 if snapshot is None else int(snapshot["counts"]["touchpoints"])


async def _changelog(deployment: Deployment) -> list[tuple[bytes, int]]:
    """(key, value size) of every message of the journeys changelog."""
    settings = deployment.settings
    topic = f"{settings.topic_prefix}{settings.app_id}-journeys-changelog"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=deployment.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a background reset to "latest" can land after the seek
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: list[tuple[bytes, int]] = []
        for tp in parts:
            while await consumer.position(tp) < ends[tp]:
                for message in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    seen.append((message.key or b"", len(message.value or b"")))
        return seen
    finally:
        await consumer.stop()


def run(ctx: Context) -> Result:
    length = ctx.sizes.live_journey_length
    customer_id = core.customer_id_for(f"email:{LONG_JOURNEY_EMAIL}")
    deployment = ctx.deployment("long-live")
    asyncio.run(deployment.create())
    ctx.progress(f"publishing one journey of {length:,} touchpoints")
    for first in range(0, length, PUBLISH_CHUNK):
        asyncio.run(deployment.publish(page_views(first, min(PUBLISH_CHUNK, length - first))))
    worker = start_worker(deployment, "worker-long")
    try:
        started = wait_ready(worker)
        deadline = time.monotonic() + ctx.sizes.drain_timeout_s
        held = 0
        while held < length and time.monotonic() < deadline:
            time.sleep(2.0)
            held = asyncio.run(_held(deployment, customer_id))
            ctx.progress(f"the worker holds {held:,} of {length:,} touchpoints")
        took = time.time() - started
    finally:
        worker.stop()
    if held < length:
        raise TimeoutError(f"the journey held {held:,} of {length:,} touchpoints in time")
    entries = asyncio.run(_changelog(deployment))
    cap, cap_source = journey_cap()
    largest = max(size for _, size in entries)
    written = sum(size for _, size in entries)
    segments = sum(1 for key, size in entries if is_segment_key(key) and size)
    metrics = {
        "journey_live_entry_max_bytes": largest,
        "journey_live_over_cap": max(0, largest - cap),
        "journey_live_touchpoints": held,
        "journey_live_s": took,
    }
    notes = {
        "journey_live_entry_max_bytes": (
            f"{len(entries):,} changelog messages ({segments:,} segments written), "
            f"{written / length:,.0f} bytes written per touchpoint"
        ),
        "journey_live_over_cap": f"cap {cap:,} ({cap_source})",
        "journey_live_s": f"{length / took:,.0f} touchpoints/s into one journey",
    }
    return Result(metrics, notes, {"changelog_messages": len(entries), "segments": segments})
