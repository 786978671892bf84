"""The typed settings: the consumer session timeout reaches the Faust app, within the broker's
bounds; the journeys kept in memory bound the fold states."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams import journey as core
from streams.app import _faust_app, build_app
from streams.journey import memo
from streams.settings import Settings


def test_the_session_timeout_is_read_from_the_environment_and_given_to_faust(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANDEM_SESSION_TIMEOUT_S", "7.5")
    settings = Settings()
    assert settings.session_timeout_s == 7.5
    conf = _faust_app(settings).conf
    assert conf.broker_session_timeout == 7.5
    # Heartbeats well inside the timeout: a slow beat must not cost the worker its partitions.
    assert conf.broker_heartbeat_interval == 1.5


def test_the_default_session_timeout_is_ten_seconds() -> None:
    assert Settings().session_timeout_s == 10.0


@pytest.mark.parametrize("seconds", [0, 5.9, 301])
def test_a_session_timeout_the_broker_would_refuse_is_rejected(seconds: float) -> None:
    with pytest.raises(ValidationError, match="session_timeout_s"):
        Settings(session_timeout_s=seconds)


def test_the_journeys_kept_in_memory_are_read_from_the_environment_and_bound_the_fold_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TANDEM_JOURNEYS_IN_MEMORY", "1234")
    settings = Settings()
    assert settings.journeys_in_memory == 1234
    kept = memo.JOURNEYS_KEPT
    try:
        build_app(settings, core.default_playbook())
        assert memo.JOURNEYS_KEPT == 1234
    finally:
        memo.keep_at_most(kept)


def test_fewer_than_a_hundred_journeys_in_memory_are_refused() -> None:
    with pytest.raises(ValidationError, match="journeys_in_memory"):
        Settings(journeys_in_memory=99)
