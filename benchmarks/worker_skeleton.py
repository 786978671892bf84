"""The worker with its work taken out: ``python -m benchmarks.worker_skeleton OUTPUT worker …``.

A real `tandem worker` (`streams.app.build_app`: the same agents, batches, consumer, in-order
admission, commits and sender) whose three batch steps only pass each message on, as
they would a touchpoint: ingest to `touchpoints.accepted` (one partition, the sequencer's),
identity to `touchpoints.resolved` (keyed, so spread over the partitions), journeys to
OUTPUT (a full topic name). No validation, identity, fold, table, snapshot or Redis write.
What it moves a second is the ceiling of the engine's topology on Faust: the engine can go
no faster however little its journey work costs (`benchmarks.measures.skeleton`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from streams.adapters import agents as worker_agents
from streams.adapters.kafka import KafkaSender
from streams.topics import ACCEPTED, RESOLVED

Event = Any


def _key(event: Event) -> bytes:
    return event.key if isinstance(event.key, bytes) else b""


def passing_on(output: str, prefix: str) -> dict[str, Any]:
    """The three batch steps, each sending its batch on and waiting until the broker has it
    (as the worker's do before they count a batch as processed)."""

    async def send_all(out: KafkaSender, topic: str, events: Sequence[Event]) -> None:
        for event in events:
            await out.send(topic, _key(event), worker_agents._raw(event))
        await out.delivered()

    async def ingest(self: Any, events: Sequence[Event], out: KafkaSender) -> None:
        await send_all(out, ACCEPTED, events)

    async def identity(self: Any, events: Sequence[Event], out: KafkaSender) -> None:
        await send_all(out, RESOLVED, events)

    async def journeys_batch(self: Any, events: Sequence[Event], out: KafkaSender) -> None:
        # OUTPUT is a full name: the sender adds the deployment's prefix to what it is given.
        await send_all(out, output.removeprefix(prefix), events)

    return {"ingest": ingest, "identity": identity, "journeys_batch": journeys_batch}


def main() -> None:
    from streams.cli import main as tandem
    from streams.settings import Settings

    output = sys.argv.pop(1)
    for name, step in passing_on(output, Settings().topic_prefix).items():
        setattr(worker_agents.Agents, name, step)
    tandem()


if __name__ == "__main__":
    main()
