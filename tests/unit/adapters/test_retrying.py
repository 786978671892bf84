"""Outages are waited out: the Redis write is retried while Redis cannot take it."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError

from streams.adapters.agents import _retrying


@pytest.mark.parametrize(
    "outage",
    [RedisConnectionError("refused"), ReadOnlyError("READONLY replica"), OSError("reset")],
)
async def test_an_outage_is_retried_until_the_write_succeeds(outage: Exception) -> None:
    attempts: list[int] = []

    async def write() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise outage
        return "written"

    assert await _retrying("writing Redis", write) == "written"
    assert len(attempts) == 3


async def test_a_fault_in_the_write_itself_is_not_retried() -> None:
    attempts: list[int] = []

    async def write() -> str:
        attempts.append(1)
        raise ResponseError("WRONGTYPE")

    assert await _retrying("writing Redis", write) is None
    assert attempts == [1]
