"""``ceiling_events_per_s``: raw aiokafka consume → produce over the backlog — the ceiling.

One consumer (no group: every partition of touchpoints.marketing and touchpoints.sales
assigned, from the beginning) takes `getmany` batches and sends each message, key and value
unchanged, to an output topic through one producer configured like the worker's (acks=all,
linger 5 ms). Timed from the first `getmany` until the last send is acknowledged; no decoding,
no state: what one Python process can move through this broker.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.context import Context, Result
from benchmarks.deployment import Deployment, message_count, partitions

OUTPUT = "bench.ceiling-out"


async def passthrough(deployment: Deployment, expected: int) -> float:
    """Move `expected` messages from the inputs to the output topic; the seconds it took."""
    output = deployment.topic(OUTPUT)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=deployment.bootstrap,
        enable_auto_commit=False,
        max_poll_records=1000,
        auto_offset_reset="earliest",  # a background reset to "latest" can land after the seek
    )
    producer = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign(await partitions(deployment.bootstrap, deployment.input_topics))
        await consumer.seek_to_beginning()
        moved, pending = 0, []
        started = time.perf_counter()
        while moved < expected:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batches.values():
                for record in records:
                    pending.append(await producer.send(output, record.value, key=record.key))
                moved += len(records)
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


def run(ctx: Context) -> Result:
    deployment, count = ctx.backlog()
    asyncio.run(deployment.create([deployment.topic(OUTPUT)]))
    ctx.progress(f"aiokafka passthrough of {count:,} messages")
    seconds = asyncio.run(passthrough(deployment, count))
    delivered = asyncio.run(message_count(deployment.bootstrap, [deployment.topic(OUTPUT)]))
    if delivered != count:
        raise RuntimeError(f"{delivered:,} messages on the output topic, expected {count:,}")
    return Result(
        metrics={"ceiling_events_per_s": count / seconds},
        notes={"ceiling_events_per_s": f"{count:,} messages in {seconds:.2f} s"},
        details={"messages": count, "seconds": seconds},
    )
