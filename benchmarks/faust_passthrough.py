"""A minimal Faust app: one agent passing touchpoints on, message by message.

    python -m benchmarks.faust_passthrough OUTPUT_TOPIC     (settings from TANDEM_* variables)

Configured like the worker (streams/app.py `build_app`: raw bytes, the same commit, producer
and session settings, the same event loop) with one agent on touchpoints.marketing +
touchpoints.sales that sends each event on to OUTPUT_TOPIC. Prints ``FIRST-EVENT <unix
time>`` when the first event arrives: the Faust ceiling is timed from there
(`benchmarks.measures.faust`).
"""

from __future__ import annotations

import sys
import time

import faust

from streams.event_loop import use_uvloop
from streams.settings import Settings
from streams.topics import MARKETING, SALES, full_name


def build(settings: Settings, output: str) -> faust.App:
    app = faust.App(
        f"{settings.topic_prefix}bench-faust-passthrough",
        broker=settings.broker_url,
        store="memory://",
        datadir=str(settings.data_dir / "faust-passthrough"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        web_enabled=False,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        producer_linger_ms=5,
    )
    inputs = app.topic(
        full_name(MARKETING, settings.topic_prefix),
        full_name(SALES, settings.topic_prefix),
        key_type=bytes,
        value_type=bytes,
    )
    out = app.topic(output, key_type=bytes, value_type=bytes, partitions=settings.partitions)

    @app.agent(inputs, concurrency=1, name="passthrough")
    async def passthrough(stream: faust.StreamT[bytes]) -> None:
        first = True
        async for event in stream.events():
            if first:
                print(f"FIRST-EVENT {time.time():.6f}", flush=True)
                first = False
            await out.send(key=event.key, value=event.value)

    return app


if __name__ == "__main__":
    output_topic = sys.argv.pop(1)
    use_uvloop()  # the worker's loop: the ceiling is measured on the same runtime
    faust.Worker(build(Settings(), output_topic), loglevel="info").execute_from_commandline()
