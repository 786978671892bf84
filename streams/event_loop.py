"""The event loop the worker runs on: uvloop where it is installed, asyncio's own elsewhere.

The worker moves thousands of small messages a second through asyncio callbacks (Faust's
streams, aiokafka's fetcher and sender, Redis), and uvloop's loop costs less per callback: in
paired drains of the bench backlog the worker moved 13–15 % more touchpoints per second on it,
for 9–12 % less CPU (docs/performance.md). The policy also covers the loops made later with
`asyncio.new_event_loop`, such as the one of Faust's consumer thread.
"""

from __future__ import annotations

import asyncio


def use_uvloop() -> str:
    """Make uvloop the event loop policy if it is installed; the loop's name either way."""
    try:
        import uvloop
    except ImportError:  # not on every platform (Windows): asyncio's own loop then
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
