"""Webhook delivery without a broker: signing, backoff, configuration, retries, dead letters."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord

from streams.delivery.webhooks import (
    ATTEMPT_HEADER,
    DEFAULT_TOLERANCE_S,
    SIGNAL_ID_HEADER,
    SIGNAL_TYPE_HEADER,
    SIGNAL_VERSION_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    SignalMessage,
    WebhookConfigError,
    WebhookDelivery,
    WebhookSender,
    WebhookTarget,
    backoff_delay,
    dead_letter_for,
    is_retryable,
    load_config,
    parse_config,
    redact_url,
    sign,
    verify,
)
from streams.settings import Settings
from tests.unit.delivery.helpers import first

URL = "https://crm.example/hooks/tandem"

# --- signing ---------------------------------------------------------------------------------


T = 1_700_000_000


def test_signature_is_hmac_sha256_of_the_timestamp_and_the_raw_body() -> None:
    body = b'{"signal_id":"sig_1","version":2}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, T) == f"t=1700000000,v1={expected}"
    assert sign(b"s3cret", body, T) == sign("s3cret", body, T)


def test_verify_accepts_only_the_exact_body_secret_and_timestamp() -> None:
    body = b'{"a": 1}'
    header = sign("k", body, T)
    assert verify("k", body, header, now=T)
    assert verify("k", body, f" {header} ", now=T)  # tolerant of header whitespace
    assert verify("k", body, header.replace(",", " , "), now=T)
    assert verify("k", body, f"{header},v1={'0' * 64}", now=T), "any v1 may match (rotation)"
    assert not verify("k", b'{"a":1}', header, now=T), "re-serialised JSON is a different body"
    assert not verify("other", body, header, now=T)
    assert not verify("k", body, None, now=T)
    assert not verify("k", body, "", now=T)
    mac = header.split("v1=")[1]
    assert not verify("k", body, f"v1={mac}", now=T), "no timestamp"
    assert not verify("k", body, f"t={T + 1},v1={mac}", now=T), "the timestamp is signed"
    assert not verify("k", body, f"sha256={mac}", now=T), "the old body-only form"


def test_verify_refuses_a_signature_outside_the_tolerance_window() -> None:
    body = b'{"a": 1}'
    header = sign("k", body, T)
    assert verify("k", body, header, now=T + DEFAULT_TOLERANCE_S)
    assert verify("k", body, header, now=T - DEFAULT_TOLERANCE_S)
    assert not verify("k", body, header, now=T + DEFAULT_TOLERANCE_S + 1), "a replay, later"
    assert not verify("k", body, header, now=T - DEFAULT_TOLERANCE_S - 1)
    assert verify("k", body, header, now=T + 3600, tolerance_s=3600)


@pytest.mark.parametrize(
    "header",
    ["t=1700000000,v1=é", "t=١٧٠٠٠٠٠٠٠٠,v1=00", "t=1700000000,v1=\ud800", "t=,v1=", "t=9" * 40,
     "garbage", ",,,", "t=1700000000", "v1=", "t=99999999999999999999,v1=00", "\x00"],
)  # fmt: skip
def test_verify_never_raises(header: str) -> None:
    body = b"{}"
    assert verify("k", body, header, now=T) is False
    assert verify("k", body, header.encode("utf-8", "surrogatepass"), now=T) is False
    assert verify("k", body, header, now=float("nan")) is False


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_equal_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=8, base_delay_s=1.0, max_delay_s=10.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (6, 10), (12, 10)]:
        delays = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 4, "jittered, not fixed"


def test_backoff_is_reproducible_with_a_seed() -> None:
    policy = RetryPolicy()
    a = [backoff_delay(n, policy, random.Random(7)) for n in range(1, 6)]
    b = [backoff_delay(n, policy, random.Random(7)) for n in range(1, 6)]
    assert a == b


def test_zero_base_delay_retries_immediately() -> None:
    policy = RetryPolicy(base_delay_s=0, max_delay_s=0)
    assert backoff_delay(3, policy, random.Random()) == 0


def test_worst_case_bounds_one_delivery() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_s=1, max_delay_s=5, timeout_s=2)
    assert policy.worst_case_s() == 5 * 2 + (1 + 2 + 4 + 5)


@pytest.mark.parametrize(
    ("status", "retry"),
    [(500, True), (502, True), (503, True), (429, True), (408, True), (425, True),
     (400, False), (401, False), (404, False), (410, False), (301, False)],
)  # fmt: skip
def test_which_statuses_are_retried(status: int, retry: bool) -> None:
    assert is_retryable(status) is retry


# --- configuration ---------------------------------------------------------------------------


def test_a_list_of_targets_with_default_topics_and_policy() -> None:
    config = parse_config([{"url": URL, "secret": "hunter2-hunter2"}], "test")
    (target,) = config.targets
    assert target.topics == ["handoff", "nurture", "alerts"]
    assert config.retry == RetryPolicy()
    assert config.retry.max_attempts == 5
    assert "hunter2" not in repr(target), "the secret never shows in reprs or logs"
    assert target.secret.get_secret_value() == "hunter2-hunter2"


def test_an_object_with_targets_and_retry_policy() -> None:
    config = parse_config(
        {
            "targets": [
                {"url": URL, "secret": "a", "topics": ["handoff"], "name": "crm"},
                {"url": "http://127.0.0.1:8000/x", "secret": "b", "topics": ["nurture", "alerts"]},
            ],
            "retry": {"max_attempts": 3, "base_delay_s": 0.5, "max_delay_s": 4},
        },
        "test",
    )
    assert config.retry.max_attempts == 3
    assert config.kinds() == ["handoff", "nurture", "alerts"]
    assert config.targets[0].label == "crm"
    assert config.targets[1].label == "http://127.0.0.1:8000/x"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "targets: List should have at least 1 item"),
        ([{"url": "ftp://x.example", "secret": "s"}], "targets.0.url: must be an absolute"),
        ([{"url": "/relative", "secret": "s"}], "targets.0.url: must be an absolute"),
        ([{"url": URL}], "targets.0.secret: Field required"),
        ([{"url": URL, "secret": ""}], "targets.0.secret"),
        ([{"url": URL, "secret": "s", "topics": ["sales"]}], "targets.0.topics.0"),
        ([{"url": URL, "secret": "s", "topics": []}], "targets.0.topics"),
        ([{"url": URL, "secret": "s", "headers": {}}], "targets.0.headers: Extra inputs"),
        ({"targets": [{"url": URL, "secret": "s"}], "retry": {"max_attempts": 0}},
         "retry.max_attempts"),
        ({"targets": [{"url": URL, "secret": "s"}], "retry": {"base_delay_s": 5,
         "max_delay_s": 1}}, "max_delay_s must be at least base_delay_s"),
        ("just a string", "(document)"),
    ],
)  # fmt: skip
def test_invalid_configuration_says_where(document: Any, message: str) -> None:
    with pytest.raises(WebhookConfigError) as error:
        parse_config(document, "TANDEM_WEBHOOKS")
    assert str(error.value).startswith("TANDEM_WEBHOOKS: ")
    assert message in str(error.value)


def test_config_from_the_environment() -> None:
    env = {"TANDEM_WEBHOOKS": json.dumps([{"url": URL, "secret": "s", "topics": ["alerts"]}])}
    config = load_config(Settings(), env)
    assert config.targets[0].topics == ["alerts"]


def test_config_from_a_json_or_yaml_file(tmp_path: Path) -> None:
    as_json = tmp_path / "hooks.json"
    as_json.write_text(json.dumps([{"url": URL, "secret": "s"}]))
    assert load_config(Settings(), {"TANDEM_WEBHOOKS_FILE": str(as_json)}).targets[0].url == URL
    as_yaml = tmp_path / "hooks.yaml"
    as_yaml.write_text(
        f"targets:\n  - url: {URL}\n    secret: s\n    topics: [handoff]\nretry:\n"
        "  max_attempts: 2\n"
    )
    config = load_config(Settings(), {"TANDEM_WEBHOOKS_FILE": str(as_yaml)})
    assert config.retry.max_attempts == 2


def test_settings_fields_win_when_they_exist() -> None:
    class WithWebhooks(Settings):
        webhooks: str | None = None

    settings = WithWebhooks(webhooks=json.dumps([{"url": URL, "secret": "s", "name": "cfg"}]))
    assert load_config(settings, {}).targets[0].name == "cfg"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no webhooks configured"),
        ({"TANDEM_WEBHOOKS": "[", "TANDEM_WEBHOOKS_FILE": "x"}, "not both"),
        ({"TANDEM_WEBHOOKS": "[{"}, "TANDEM_WEBHOOKS is not JSON"),
        ({"TANDEM_WEBHOOKS_FILE": "/nonexistent/hooks.json"}, "cannot read /nonexistent"),
    ],
)
def test_configuration_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(WebhookConfigError, match=message):
        load_config(Settings(), env)


def test_redact_url_drops_credentials_query_and_fragment() -> None:
    assert (
        redact_url("https://user:pw@crm.example:8443/h?token=x#f") == "https://crm.example:8443/h"
    )
    assert redact_url(URL) == URL


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0AAA1111/B0BBB2222/xoxbSecretToken123",
         "https://hooks.slack.com/services/***/***/***"),
        ("https://discord.com/api/webhooks/123456789012345678/AbC-dEf_ghi",
         "https://discord.com/api/webhooks/***/***"),
        ("https://crm.example/v1/hooks/tandem/", "https://crm.example/v1/hooks/tandem/"),
        ("https://crm.example/hooks/a1b2c3d4e5f6?sig=x", "https://crm.example/hooks/***"),
        ("https://crm.example:99999/x", "***"),
    ],
)  # fmt: skip
def test_redact_url_hides_secrets_in_the_path(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --- one signal to one target ----------------------------------------------------------------


def record(
    value: bytes, topic: str = "t1.signals.handoff", offset: int = 3
) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(topic, 1, offset, 0, 0, b"cus_1", value, None, 5, len(value), [])


def handoff_message() -> SignalMessage:
    body = first("handoff").model_dump_json().encode()
    return SignalMessage.from_record(record(body), "t1.")


class Receiver:
    """A scripted receiver: answers from a list (the last one repeats), records requests."""

    def __init__(self, *answers: int | Exception | httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(answer, text="nope" if answer >= 300 else "ok")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def sender(receiver: Receiver, sleeps: Sleeps, **policy: Any) -> WebhookSender:
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    return WebhookSender(
        RetryPolicy(**policy), client, sleep=sleeps, rng=random.Random(0), clock=lambda: 1700.9
    )


TARGET = WebhookTarget(url=URL, secret="s3cret", topics=["handoff"], name="crm")


def test_a_signal_message_reads_id_version_and_kind() -> None:
    message = handoff_message()
    signal = first("handoff")
    assert (message.signal_id, message.version) == (signal.signal_id, 1)
    assert message.signal_type == "handoff"
    assert (message.kind, message.topic, message.partition, message.offset) == (
        "handoff", "signals.handoff", 1, 3,
    )  # fmt: skip
    assert message.is_signal
    junk = SignalMessage.from_record(record(b"not json"), "t1.")
    assert not junk.is_signal and junk.signal_id is None


async def test_delivered_first_time_with_signed_headers() -> None:
    receiver, sleeps = Receiver(200), Sleeps()
    message = handoff_message()
    result = await sender(receiver, sleeps).deliver(TARGET, message)
    assert result.delivered and result.attempts == 1 and result.status == 200
    assert sleeps.delays == []
    (request,) = receiver.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.content == message.body, "the exact bytes the worker produced"
    headers = request.headers
    assert verify("s3cret", request.content, headers[SIGNATURE_HEADER], now=1700)
    assert headers[SIGNAL_ID_HEADER] == message.signal_id
    assert headers[SIGNAL_VERSION_HEADER] == "1"
    assert headers[SIGNAL_TYPE_HEADER] == "handoff"
    assert headers[TIMESTAMP_HEADER] == "1700"
    assert headers[ATTEMPT_HEADER] == "1"
    assert headers["content-type"] == "application/json"


async def test_retried_after_a_server_error_then_delivered() -> None:
    receiver, sleeps = Receiver(503, 200), Sleeps()
    result = await sender(receiver, sleeps, base_delay_s=2).deliver(TARGET, handoff_message())
    assert result.delivered and result.attempts == 2
    assert len(sleeps.delays) == 1 and 1.0 <= sleeps.delays[0] <= 2.0
    assert [r.headers[ATTEMPT_HEADER] for r in receiver.requests] == ["1", "2"]
    signatures = {r.headers[SIGNATURE_HEADER] for r in receiver.requests}
    assert len(signatures) == 1, "the same body in the same second, the same signature"


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    receiver, sleeps = Receiver(500), Sleeps()
    result = await sender(receiver, sleeps, max_attempts=4, base_delay_s=1, max_delay_s=3).deliver(
        TARGET, handoff_message()
    )
    assert not result.delivered
    assert result.attempts == 4 and len(receiver.requests) == 4
    assert len(sleeps.delays) == 3, "no sleep after the last attempt"
    assert all(
        [0.5 <= sleeps.delays[0] <= 1, 1 <= sleeps.delays[1] <= 2, 1.5 <= sleeps.delays[2] <= 3]
    )
    assert result.status == 500 and result.error == "HTTP 500: nope"


async def test_a_client_error_is_final_at_once() -> None:
    receiver, sleeps = Receiver(400), Sleeps()
    result = await sender(receiver, sleeps).deliver(TARGET, handoff_message())
    assert not result.delivered and result.attempts == 1 and sleeps.delays == []
    assert result.status == 400


async def test_a_redirect_is_not_followed() -> None:
    moved = httpx.Response(301, headers={"Location": "https://elsewhere.example/"})
    receiver, sleeps = Receiver(moved), Sleeps()
    result = await sender(receiver, sleeps).deliver(TARGET, handoff_message())
    assert not result.delivered and result.status == 301 and len(receiver.requests) == 1


async def test_connection_errors_are_retried() -> None:
    refused = httpx.ConnectError("connection refused")
    receiver, sleeps = Receiver(refused, refused, 204), Sleeps()
    result = await sender(receiver, sleeps).deliver(TARGET, handoff_message())
    assert result.delivered and result.attempts == 3 and result.status == 204
    receiver, sleeps = Receiver(httpx.ReadTimeout("")), Sleeps()
    result = await sender(receiver, sleeps, max_attempts=2).deliver(TARGET, handoff_message())
    assert not result.delivered and result.status is None
    assert result.error == "ReadTimeout"


async def test_retry_after_is_honoured_up_to_the_max_delay() -> None:
    busy = httpx.Response(429, headers={"Retry-After": "7"})
    receiver, sleeps = Receiver(busy, 200), Sleeps()
    await sender(receiver, sleeps, base_delay_s=1, max_delay_s=30).deliver(
        TARGET, handoff_message()
    )
    assert sleeps.delays == [7.0]
    receiver, sleeps = Receiver(busy, 200), Sleeps()
    await sender(receiver, sleeps, base_delay_s=1, max_delay_s=3).deliver(TARGET, handoff_message())
    assert sleeps.delays == [3.0]


# --- dead letters and routing ----------------------------------------------------------------


async def test_dead_letter_carries_signal_url_attempts_and_last_error() -> None:
    receiver, sleeps = Receiver(500), Sleeps()
    target = WebhookTarget(url="https://u:pw@crm.example/h?token=x", secret="s")
    message = handoff_message()
    result = await sender(receiver, sleeps, max_attempts=2).deliver(target, message)
    from datetime import UTC, datetime

    letter = dead_letter_for(message, result, datetime(2025, 1, 1, tzinfo=UTC))
    assert letter.signal == json.loads(message.body)
    assert (letter.signal_id, letter.version, letter.signal_type) == (
        message.signal_id, 1, "handoff",
    )  # fmt: skip
    assert letter.url == "https://crm.example/h", "no credentials in dead letters"
    assert letter.attempts == 2 and letter.last_status == 500
    assert letter.last_error == "HTTP 500: nope"
    assert (letter.topic, letter.partition, letter.offset) == ("signals.handoff", 1, 3)
    assert "pw" not in letter.model_dump_json() and "s3cret" not in letter.model_dump_json()


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, value, key))


async def test_each_target_gets_only_its_topics_and_failures_dead_letter_per_target() -> None:
    calls: list[str] = []

    def receive(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return httpx.Response(200 if request.url.host == "ok.example" else 410)

    config = parse_config(
        [
            {"url": "https://ok.example/h", "secret": "a", "topics": ["handoff"]},
            {"url": "https://gone.example/h", "secret": "b", "topics": ["handoff", "nurture"]},
            {"url": "https://alerts.example/h", "secret": "c", "topics": ["alerts"]},
        ],
        "test",
    )
    delivery = WebhookDelivery(
        Settings(topic_prefix="t1."), config, transport=httpx.MockTransport(receive)
    )
    producer = RecordingProducer()
    delivery._producer = producer
    try:
        results = await delivery.handle(handoff_message())
        assert sorted(calls) == ["gone.example", "ok.example"]
        assert [r.delivered for r in results] == [True, False]
        (letter,) = producer.sent
        assert letter[0] == "t1.signals.webhook-deadletter"
        assert letter[2] == handoff_message().signal_id.encode()  # type: ignore[union-attr]
        assert json.loads(letter[1])["url"] == "https://gone.example/h"
        assert delivery.stats.as_dict()["delivered"] == 1
        assert delivery.stats.dead_lettered == 1

        calls.clear()
        junk = SignalMessage.from_record(record(b"not json", "t1.signals.alerts"), "t1.")
        await delivery.handle(junk)
        assert calls == [], "what is not a signal is not sent"
        assert json.loads(producer.sent[-1][1])["signal_text"] == "not json"
        assert producer.sent[-1][2] == b"signals.alerts/1/3"
    finally:
        await delivery._client.aclose()


SLACK = "https://hooks.slack.com/services/T0AAA1111/B0BBB2222/xoxbSecretToken123?k=qsecret"


async def test_a_secret_in_the_url_never_reaches_errors_dead_letters_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    echo = httpx.Response(404, text=f"no route for {SLACK} (path /services/T0AAA1111/B0BBB2222)")
    receiver, sleeps = Receiver(httpx.ConnectError(f"cannot reach {SLACK}"), echo), Sleeps()
    target = WebhookTarget(url=SLACK, secret="s3cret", topics=["handoff"])
    message = handoff_message()
    with caplog.at_level(logging.DEBUG):
        result = await sender(receiver, sleeps, max_attempts=2).deliver(target, message)
    letter = dead_letter_for(message, result, datetime(2025, 1, 1, tzinfo=UTC))
    shown = [result.error or "", letter.model_dump_json(), caplog.text, target.label]
    for text in shown:
        for secret in ("T0AAA1111", "B0BBB2222", "xoxbSecretToken123", "qsecret"):
            assert secret not in text, (secret, text)
    assert letter.url == "https://hooks.slack.com/services/***/***/***"
    assert "HTTP 404" in (result.error or "")
