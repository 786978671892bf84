"""The worker's event loops are uvloop's (cheaper per callback; docs/performance.md)."""

from __future__ import annotations

import asyncio

import uvloop

from streams.event_loop import use_uvloop


def test_the_worker_sets_uvloop_for_every_loop_it_makes() -> None:
    policy = asyncio.get_event_loop_policy()
    try:
        assert use_uvloop() == "uvloop"
        # Faust's consumer thread makes its own loop with `new_event_loop`: uvloop's too.
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(policy)
