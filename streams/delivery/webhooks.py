"""Webhook delivery: every signal POSTed to the URLs that want it, signed, retried, dead-lettered.

Configuration (`load_config`): ``TANDEM_WEBHOOKS`` holds JSON, or ``TANDEM_WEBHOOKS_FILE``
names a JSON (or YAML) file, with either a list of targets or an object with targets and a
retry policy::

    [{"url": "https://crm.example/hooks/tandem", "secret": "s3cret", "topics": ["handoff"]}]

    {"targets": [...], "retry": {"max_attempts": 5, "base_delay_s": 1, "max_delay_s": 60,
                                 "timeout_s": 10}}

Each request carries the signal's JSON exactly as the worker produced it (the Kafka message
value) and these headers:

    X-Tandem-Signature:      t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
    X-Tandem-Signal-Id:      the signal id
    X-Tandem-Signal-Version: its version
    X-Tandem-Signal-Type:    handoff, handoff_revoked, nurture, nurture_withdrawn, …
    X-Tandem-Timestamp:      Unix seconds when this attempt was sent (the signature's t)
    X-Tandem-Attempt:        1, 2, … (the same signal may arrive more than once)

Receivers verify the signature over the raw bytes before parsing (`verify`, which also refuses a
signature older or newer than a tolerance window, so a captured request cannot be replayed
later), answer 2xx once
they have stored the signal, and **deduplicate by (signal id, version)**: delivery is
at-least-once. A Kafka offset is committed only after every target has either accepted the
signal or had it dead-lettered, so a crash or restart re-sends signals whose delivery was not
finished — possibly to a target that already had them. Keep the highest version per signal id
(a higher version is a correction; ``handoff_revoked`` takes a hand-off back).

Retries: connection errors, timeouts, 408, 425, 429 and 5xx are retried with exponential
backoff and jitter (`backoff_delay`), honouring ``Retry-After`` up to the maximum delay, for at
most ``max_attempts`` attempts; other answers (a 4xx, a redirect) are final at once. A signal a
target did not accept goes to ``signals.webhook-deadletter`` (`WebhookDeadLetter`: the signal,
the URL, the attempts and the last error) and delivery moves on. Messages of one partition
(one customer's signals) are delivered in order; partitions are delivered concurrently.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from streams.delivery._kafka import (
    SIGNAL_KINDS,
    TOPIC_KINDS,
    IdleClock,
    SignalKind,
    signal_consumer,
    start_and_subscribe,
)
from streams.settings import Settings
from streams.topics import WEBHOOK_DEADLETTER, full_name

log = logging.getLogger("tandem.webhooks")

ENV_INLINE = "TANDEM_WEBHOOKS"
ENV_FILE = "TANDEM_WEBHOOKS_FILE"
DEFAULT_GROUP = "tandem-webhooks"

SIGNATURE_HEADER = "X-Tandem-Signature"
SIGNAL_ID_HEADER = "X-Tandem-Signal-Id"
SIGNAL_VERSION_HEADER = "X-Tandem-Signal-Version"
SIGNAL_TYPE_HEADER = "X-Tandem-Signal-Type"
TIMESTAMP_HEADER = "X-Tandem-Timestamp"
ATTEMPT_HEADER = "X-Tandem-Attempt"
USER_AGENT = "tandem-webhooks/1"

RETRYABLE_STATUS = frozenset({408, 425, 429})
"""4xx answers that mean "not now" rather than "never" (every 5xx is retried too)."""

MAX_ERROR_CHARS = 500


# --- configuration ---------------------------------------------------------------------------


class WebhookConfigError(ValueError):
    """The webhook configuration is missing or invalid (one line, says where)."""


class WebhookTarget(BaseModel):
    """One receiver: where to POST, the shared secret to sign with, which signals it wants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http(s) URL the signals are POSTed to")
    secret: SecretStr = Field(min_length=1, description="shared HMAC-SHA256 secret")
    topics: list[SignalKind] = Field(
        default_factory=lambda: list(SIGNAL_KINDS),
        min_length=1,
        description="handoff, nurture and/or alerts (default: all three)",
    )
    name: str | None = Field(None, description="a label for logs and dead letters")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @property
    def label(self) -> str:
        """The name, or the URL without credentials or query (safe to log)."""
        return self.name or redact_url(self.url)


class RetryPolicy(BaseModel):
    """How hard to try: attempts, exponential backoff with jitter, per-request timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(5, ge=1, le=20, description="attempts per signal and target")
    base_delay_s: float = Field(1.0, ge=0, description="delay after the first failure")
    max_delay_s: float = Field(60.0, ge=0, description="cap of any single delay")
    timeout_s: float = Field(10.0, gt=0, description="per-request timeout")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_delay_s < self.base_delay_s:
            raise ValueError("max_delay_s must be at least base_delay_s")
        return self

    def worst_case_s(self) -> float:
        """The longest one signal can take to deliver to one target (timeouts and delays)."""
        delays = sum(
            min(self.max_delay_s, self.base_delay_s * 2.0**n) for n in range(self.max_attempts - 1)
        )
        return self.max_attempts * self.timeout_s + delays


class WebhookConfig(BaseModel):
    """Every target and the retry policy they share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: list[WebhookTarget] = Field(min_length=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    def kinds(self) -> list[SignalKind]:
        """The signal kinds at least one target wants, in catalogue order."""
        wanted = {kind for target in self.targets for kind in target.topics}
        return [kind for kind in SIGNAL_KINDS if kind in wanted]


def parse_config(document: Any, source: str) -> WebhookConfig:
    """Validate a parsed configuration: a list of targets, or {"targets": …, "retry": …}."""
    if isinstance(document, list):
        document = {"targets": document}
    try:
        return WebhookConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = first["msg"].removeprefix("Value error, ")
        raise WebhookConfigError(f"{source}: {where}: {message}{more}") from None


def load_config(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> WebhookConfig:
    """The configuration from ``TANDEM_WEBHOOKS`` (JSON) or ``TANDEM_WEBHOOKS_FILE``.

    Reads `settings.webhooks` / `settings.webhooks_file` when `Settings` has those fields
    (they also come from ``.env``), else the environment.
    """
    env = os.environ if environ is None else environ
    inline = getattr(settings, "webhooks", None) or env.get(ENV_INLINE) or None
    file = getattr(settings, "webhooks_file", None) or env.get(ENV_FILE) or None
    if inline and file:
        raise WebhookConfigError(f"set {ENV_INLINE} or {ENV_FILE}, not both")
    if inline:
        try:
            document = json.loads(str(inline))
        except json.JSONDecodeError as exc:
            raise WebhookConfigError(f"{ENV_INLINE} is not JSON: {exc}") from None
        return parse_config(document, ENV_INLINE)
    if file:
        path = Path(file)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise WebhookConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            # YAML is a superset of JSON: one parser reads both.
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise WebhookConfigError(f"{path} is not JSON or YAML: {exc}") from None
        return parse_config(document, str(path))
    raise WebhookConfigError(
        f"no webhooks configured: set {ENV_INLINE} (JSON) or {ENV_FILE} (a JSON/YAML file)"
    )


_WORD_SEGMENT = re.compile(r"^([a-z][a-z._-]{0,23}|v[0-9]{1,2})$")
REDACTED = "***"


def redact_url(url: str) -> str:
    """The URL safe to show: no user info, query or fragment, and every path segment that is
    not a plain lower-case word replaced by ``***`` (Slack-style URLs carry their secret in the
    path: ``https://hooks.slack.com/services/***/***/***``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # not a URL at all (a bad port, brackets): show nothing of it
        return REDACTED
    path = "/".join(
        segment if not segment or _WORD_SEGMENT.match(segment) else REDACTED
        for segment in parts.path.split("/")
    )
    return urlunsplit((parts.scheme, host, path, "", ""))


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with the URL, and each secret-looking part of it, redacted."""
    parts = urlsplit(url)
    secrets = [url, parts.query, parts.fragment, parts.password or "", parts.username or ""]
    secrets += [s for s in parts.path.split("/") if s and not _WORD_SEGMENT.match(s)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED if secret != url else redact_url(url))
    return text


class _RedactRequestUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; webhook URLs may hold secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactRequestUrls())


# --- signing and backoff -----------------------------------------------------------------------


def _key(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode("utf-8") if isinstance(secret, str) else secret


DEFAULT_TOLERANCE_S = 300.0
"""How far a signature's timestamp may be from the receiver's clock (5 minutes)."""


def _mac(secret: str | bytes | SecretStr, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes | SecretStr, body: bytes, timestamp: int) -> str:
    """The ``X-Tandem-Signature`` value: ``t=<timestamp>,v1=<hex>``, the hex being the
    HMAC-SHA256 of ``<timestamp>.<raw body>`` with the target's secret."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def _parse_signature(signature: str | bytes) -> tuple[int, list[bytes]]:
    text = signature.decode("latin-1") if isinstance(signature, bytes) else signature
    timestamp: int | None = None
    macs: list[bytes] = []
    for item in text.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            macs.append(value.encode("utf-8", "replace"))
    if timestamp is None or not macs:
        raise ValueError("not a t=…,v1=… signature")
    return timestamp, macs


def verify(
    secret: str | bytes | SecretStr,
    body: bytes,
    signature: str | bytes | None,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether `signature` (the header's value) signs `body` with `secret` and was made within
    `tolerance_s` of `now` (Unix seconds, the receiver's clock). Constant time; never raises:
    a malformed, non-ASCII or missing header is simply not a valid signature.

    What a receiver does with the raw request body, before parsing it. Several ``v1=`` values
    are accepted (any one matching), so a sender can sign with an old and a new secret.
    """
    try:
        if not signature:
            return False
        timestamp, macs = _parse_signature(signature)
        if not abs(now - timestamp) <= tolerance_s:
            return False
        expected = _mac(secret, timestamp, body).encode()
        return any(hmac.compare_digest(expected, mac) for mac in macs)
    except (TypeError, ValueError, OverflowError, UnicodeError):
        return False


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Exponential — ``base × 2^(attempt-1)``, capped at ``max_delay_s`` — with "equal jitter":
    uniformly between half and all of it, so retries of many signals failing together spread
    out but still grow.
    """
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


def retry_after_s(response: httpx.Response) -> float | None:
    """The receiver's ``Retry-After`` (seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_retryable(status: int) -> bool:
    """Whether an HTTP status may succeed later."""
    return status >= 500 or status in RETRYABLE_STATUS


# --- one signal to one target ------------------------------------------------------------------


@dataclass(frozen=True)
class SignalMessage:
    """A signal as read from Kafka: the exact bytes to send and what the headers need."""

    body: bytes
    signal_id: str | None
    version: int | None
    signal_type: str | None
    kind: SignalKind
    topic: str
    partition: int
    offset: int

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes], prefix: str) -> SignalMessage:
        topic = record.topic.removeprefix(prefix)
        body = record.value or b""
        signal_id = version = signal_type = None
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict):
            signal_id = document.get("signal_id")
            version = document.get("version")
            signal_type = document.get("signal_type")
        return cls(
            body=body,
            signal_id=signal_id if isinstance(signal_id, str) else None,
            version=version if isinstance(version, int) else None,
            signal_type=signal_type if isinstance(signal_type, str) else None,
            kind=TOPIC_KINDS[topic],
            topic=topic,
            partition=record.partition,
            offset=record.offset,
        )

    @property
    def is_signal(self) -> bool:
        return self.signal_id is not None and self.version is not None


@dataclass
class DeliveryResult:
    """How delivering one signal to one target ended."""

    target: WebhookTarget
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    first_attempt_at: datetime | None = None


Sleep = Callable[[float], Awaitable[None]]


class WebhookSender:
    """POSTs one signal to one target, retrying as the policy says (no Kafka here)."""

    def __init__(
        self,
        policy: RetryPolicy,
        client: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.client = client
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.clock = clock

    def headers(
        self, target: WebhookTarget, message: SignalMessage, attempt: int
    ) -> dict[str, str]:
        """The request headers of one attempt (signature included)."""
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(target.secret, message.body, timestamp),
            TIMESTAMP_HEADER: str(timestamp),
            ATTEMPT_HEADER: str(attempt),
        }
        if message.signal_id is not None:
            headers[SIGNAL_ID_HEADER] = message.signal_id
        if message.version is not None:
            headers[SIGNAL_VERSION_HEADER] = str(message.version)
        if message.signal_type is not None:
            headers[SIGNAL_TYPE_HEADER] = message.signal_type
        return headers

    async def deliver(self, target: WebhookTarget, message: SignalMessage) -> DeliveryResult:
        """Try until the target answers 2xx, a final error, or the attempts run out."""
        result = DeliveryResult(target, delivered=False, attempts=0)
        result.first_attempt_at = datetime.fromtimestamp(self.clock(), UTC)
        for attempt in range(1, self.policy.max_attempts + 1):
            result.attempts = attempt
            wait: float | None = None
            try:
                response = await self.client.post(
                    target.url,
                    content=message.body,
                    headers=self.headers(target, message, attempt),
                    timeout=self.policy.timeout_s,
                )
            except httpx.HTTPError as exc:
                result.status = None
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                result.error = scrub(detail, target.url)[:MAX_ERROR_CHARS]
                retryable = True
            else:
                result.status = response.status_code
                if response.is_success:
                    result.delivered, result.error = True, None
                    return result
                body = scrub(response.text[:200].strip(), target.url)
                result.error = f"HTTP {response.status_code}" + (f": {body}" if body else "")
                retryable = is_retryable(response.status_code)
                wait = retry_after_s(response)
            if not retryable or attempt == self.policy.max_attempts:
                break
            delay = backoff_delay(attempt, self.policy, self.rng)
            if wait is not None:
                # The receiver knows best when it can take more, within our own bound.
                delay = max(delay, min(wait, self.policy.max_delay_s))
            log.info(
                "webhook %s: %s v%s attempt %d failed (%s); retrying in %.2f s",
                target.label, message.signal_id, message.version, attempt, result.error, delay,
            )  # fmt: skip
            await self.sleep(delay)
        return result


class WebhookDeadLetter(BaseModel):
    """A signal a target did not accept after the last attempt (``signals.webhook-deadletter``).

    Keyed by the signal id. Re-delivering it means POSTing `signal` to `url` again, signed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal_id: str | None = Field(description="None if the message was not a signal")
    version: int | None
    signal_type: str | None
    signal: dict[str, Any] | None = Field(description="the signal JSON as it would be sent")
    signal_text: str | None = Field(None, description="the raw value, when it is not JSON")
    topic: str = Field(description="the signal topic, without the deployment's prefix")
    partition: int
    offset: int
    url: str = Field(description="the target URL, redacted (`redact_url`)")
    target: str | None = Field(description="the target's name, if it has one")
    attempts: int = Field(ge=0)
    last_status: int | None = Field(description="the last HTTP status, None: no answer")
    last_error: str
    first_attempt_at: AwareDatetime | None
    failed_at: AwareDatetime


def dead_letter_for(
    message: SignalMessage, result: DeliveryResult, at: datetime
) -> WebhookDeadLetter:
    """The dead letter of a failed delivery."""
    try:
        document = json.loads(message.body)
    except ValueError:
        document = None
    is_object = isinstance(document, dict)
    return WebhookDeadLetter(
        signal_id=message.signal_id,
        version=message.version,
        signal_type=message.signal_type,
        signal=document if is_object else None,
        signal_text=None if is_object else message.body.decode("utf-8", "replace"),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        url=redact_url(result.target.url),
        target=result.target.name,
        attempts=result.attempts,
        last_status=result.status,
        last_error=result.error or "unknown error",
        first_attempt_at=result.first_attempt_at,
        failed_at=at,
    )


# --- the delivery loop -------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    """What a run did."""

    signals: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    retries: int = 0
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)

    def record(self, result: DeliveryResult) -> None:
        row = self.by_target.setdefault(
            result.target.label, {"delivered": 0, "dead_lettered": 0, "retries": 0}
        )
        key = "delivered" if result.delivered else "dead_lettered"
        row[key] += 1
        row["retries"] += result.attempts - 1
        setattr(self, key, getattr(self, key) + 1)
        self.retries += result.attempts - 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "signals": self.signals,
            "delivered": self.delivered,
            "dead_lettered": self.dead_lettered,
            "retries": self.retries,
            "targets": self.by_target,
        }


class WebhookDelivery:
    """Consumes the signal topics as a consumer group and delivers every signal to its targets.

    An async context manager; `run` delivers until stopped, idle or at a limit. `transport`,
    `sleep` and `rng` are for tests (an `httpx.MockTransport`, no real waiting, a seed).
    """

    def __init__(
        self,
        settings: Settings,
        config: WebhookConfig,
        group: str = DEFAULT_GROUP,
        *,
        from_beginning: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        max_poll_records: int = 20,
    ) -> None:
        self.settings = settings
        self.config = config
        self.group = group
        self.kinds = config.kinds()
        self.stats = DeliveryStats()
        # A poll may be followed by max_poll_records slow deliveries before the next one: the
        # group must not think this member died meanwhile (heartbeats run separately).
        worst_ms = int(config.retry.worst_case_s() * max_poll_records * 1000 * 1.5)
        self._consumer: AIOKafkaConsumer = signal_consumer(
            settings,
            self.kinds,
            group,
            from_beginning=from_beginning,
            client_id="tandem-webhooks",
            max_poll_records=max_poll_records,
            max_poll_interval_ms=max(300_000, worst_ms),
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="tandem-webhooks",
            acks="all",
            enable_idempotence=True,
        )
        self._client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        self._sender = WebhookSender(config.retry, self._client, sleep=sleep, rng=rng)
        self._commit_lock = asyncio.Lock()
        self._deadletter_topic = full_name(WEBHOOK_DEADLETTER, settings.topic_prefix)

    async def __aenter__(self) -> Self:
        try:
            await start_and_subscribe(self._consumer, self.settings, self.kinds)
            await self._producer.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        # Nothing to commit here: every finished message was committed as it finished, and
        # an unfinished one must be delivered again.
        try:
            await self._consumer.stop()
        finally:
            try:
                await self._producer.stop()
            finally:
                await self._client.aclose()

    def targets_for(self, kind: SignalKind) -> list[WebhookTarget]:
        """The targets that want signals of `kind`."""
        return [target for target in self.config.targets if kind in target.topics]

    async def handle(self, message: SignalMessage) -> list[DeliveryResult]:
        """Deliver one signal to every target that wants it; dead-letter what failed."""
        targets = self.targets_for(message.kind)
        if not message.is_signal:
            # Not a signal (nothing the worker wrote): dead-letter it for every target rather
            # than send receivers something they cannot deduplicate.
            results = [
                DeliveryResult(t, delivered=False, attempts=0, error="not a signal")
                for t in targets
            ]
        else:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._sender.deliver(t, message)) for t in targets]
            results = [task.result() for task in tasks]
        self.stats.signals += 1
        for result in results:
            self.stats.record(result)
            if result.delivered:
                log.info(
                    "webhook %s: delivered %s v%s (%s) in %d attempt(s)",
                    result.target.label, message.signal_id, message.version,
                    message.signal_type, result.attempts,
                )  # fmt: skip
                continue
            letter = dead_letter_for(message, result, datetime.now(UTC))
            key = message.signal_id or f"{message.topic}/{message.partition}/{message.offset}"
            await self._producer.send_and_wait(
                self._deadletter_topic, value=letter.model_dump_json().encode(), key=key.encode()
            )
            log.warning(
                "webhook %s: dead-lettered %s v%s after %d attempt(s): %s",
                result.target.label, message.signal_id, message.version, result.attempts,
                result.error,
            )  # fmt: skip
        return results

    async def _drain(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        for record in records:
            message = SignalMessage.from_record(record, self.settings.topic_prefix)
            await self.handle(message)
            # Only now: every target has it or its dead letter is acknowledged by the broker.
            async with self._commit_lock:
                await self._consumer.commit({tp: record.offset + 1})

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        idle_exit: float | None = None,
        limit: int | None = None,
    ) -> DeliveryStats:
        """Deliver until `stop` is set, the topics were idle for `idle_exit` seconds, or `limit`
        signals were handled (None: no bound)."""
        clock = IdleClock()
        while (stop is None or not stop.is_set()) and (limit is None or self.stats.signals < limit):
            room = None if limit is None else limit - self.stats.signals
            batch = await self._consumer.getmany(timeout_ms=500, max_records=room)
            if not batch:
                assigned = bool(self._consumer.assignment())
                if idle_exit is not None and clock.idle_for(assigned) >= idle_exit:
                    break
                continue
            clock.busy()
            # One task per partition: a slow target delays only the customers of that
            # partition, and each partition's signals still arrive in order.
            # A TaskGroup: if one partition fails (the broker refuses a dead letter), the others
            # are cancelled before committing anything more, and the error ends the run.
            async with asyncio.TaskGroup() as group:
                for tp, records in batch.items():
                    group.create_task(self._drain(tp, records))
        return self.stats
