"""When has a worker drained its backlog? Watched from outside, on the broker and in Redis.

Drained means, all at once:

* the worker's consumer group has committed every message of every topic it consumes (the
  inputs and its internal topics: `deployment.consumed_topics`) — Faust commits an offset only
  after the agent has finished with the message, Redis writes included;
* for a quiet window nothing grew: no topic of the deployment (internal topics, snapshots,
  signals, changelogs) and not the number of live journeys in Redis. The window is longer than
  the worker's timer interval, so a round of timer ticks cannot hide in it.

The drain ended at the last change seen (polled every `POLL_S`), not when the window closed.
The live journey count is reported next to the replay's; it is not part of the definition,
because today's engine ends with a few more journeys than the replay (issue 9, "live ≠
replay") and would never drain by that rule.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.deployment import Deployment, OffsetWatcher, consumed_topics, group_lag

POLL_S = 0.1  # the end of a drain is known to this much: a fast engine drains in seconds


@dataclass(frozen=True)
class Drained:
    """When the drain ended (`time.time()`), and what the deployment looked like then."""

    at: float
    live_journeys: int
    written_messages: int
    by_topic: dict[str, int]
    """Messages in each of the deployment's topics then, by full name."""


async def _all_topics(deployment: Deployment) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    return sorted(n for n in names if n.startswith(deployment.settings.topic_prefix))


async def _by_topic(watcher: OffsetWatcher) -> dict[str, int]:
    counts: dict[str, int] = {}
    for partition, end in (await watcher.ends()).items():
        counts[partition.topic] = counts.get(partition.topic, 0) + end
    return dict(sorted(counts.items()))


async def wait_drained(deployment: Deployment, *, quiet_s: float, timeout: float) -> Drained:
    """Wait until the worker of `deployment` has drained (see the module docstring)."""
    deadline = time.monotonic() + timeout
    last_change, last_state = time.time(), None
    # Listed once: the worker creates its topics (changelogs included) before it is ready.
    async with OffsetWatcher(deployment.bootstrap, await _all_topics(deployment)) as watcher:
        while time.monotonic() < deadline:
            state = (await watcher.total(), await deployment.live_journeys())
            if state != last_state:
                last_change, last_state = time.time(), state
            elif time.time() - last_change >= quiet_s:
                lag = await group_lag(deployment, await consumed_topics(deployment))
                if not any(lag.values()):
                    return Drained(last_change, state[1], state[0], await _by_topic(watcher))
            await asyncio.sleep(POLL_S)
    lag = await group_lag(deployment, await consumed_topics(deployment))
    raise TimeoutError(f"not drained within {timeout:.0f} s; lag by topic: {lag}")
