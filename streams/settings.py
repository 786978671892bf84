"""One typed settings object, read at the edge (environment variables prefixed ``TANDEM_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything Tandem's adapters need to know about their surroundings."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", env_file=".env", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port of a Kafka broker")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis read model")
    app_id: str = Field("tandem", description="Faust app id (consumer group, changelog prefix)")
    topic_prefix: str = Field("", description="prefix for every topic name (test isolation)")
    redis_prefix: str = Field("tandem:", description="prefix for every Redis key")
    redis_timeout_s: float = Field(
        5.0, gt=0, description="longest a Redis call may take before it counts as an outage"
    )
    partitions: int = Field(4, ge=1, description="partitions of the customer-keyed topics")
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://")
    data_dir: Path = Field(PROJECT_ROOT / ".tandem", description="local state, logs, jars")
    playbook: Path | None = Field(None, description="playbook YAML (default: the bundled one)")
    web_port: int = Field(6066, description="Faust worker's web port")
    api_port: int = Field(8080, description="HTTP API port")
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="port of the worker's Prometheus /metrics (0: none)"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="interface the worker's metrics listen on (0.0.0.0: all)"
    )
    timer_interval_s: float = Field(5.0, gt=0, description="how often SLA/nurture timers run")
    session_timeout_s: float = Field(
        10.0,
        ge=6.0,
        le=300.0,
        description="how long the group waits for a worker that stopped answering before its "
        "partitions go to the others (a restarted worker waits it out once; the broker's "
        "minimum is 6 s)",
    )
    journeys_in_memory: int = Field(
        20_000,
        ge=100,
        description="journeys a worker keeps decoded, with their fold state, in memory: "
        "more than its active customers keeps every change incremental; each costs memory "
        "(docs/operations.md)",
    )
    collector_reclaim_s: float = Field(
        21_600.0,
        ge=0,
        description="how often a worker collects the little cyclic garbage among the objects it "
        "froze: one full collection, a pause that grows with its heap (0: never; "
        "docs/operations.md)",
    )
    batch_size: int = Field(500, ge=1, description="messages an agent takes per batch at most")
    batch_within_s: float = Field(
        0.02, gt=0, description="longest an agent waits to fill a batch (adds to latency)"
    )
    kafka_heap: str = Field("512m", description="heap of the local Kafka broker")
    api_keys: dict[str, dict[str, Any]] | None = Field(
        None,
        description='HTTP API keys by digest, JSON: {"sha256:<hex>": {"scopes": […], …}} '
        "(streams/api/auth.py)",
    )
    api_keys_file: Path | None = Field(
        None,
        description="the same, from a JSON file (default: <data_dir>/api-keys.json, written "
        "by `tandem keys create`)",
    )
    public_kpis: bool = Field(
        False, description="serve the aggregate KPIs (GET /v1/kpis) without an API key"
    )
    # Kept as text: streams.delivery.webhooks parses and validates it with clear errors.
    webhooks: str | None = Field(None, description="webhook targets, JSON (docs/delivery.md)")
    webhooks_file: Path | None = Field(None, description="the same, from a JSON or YAML file")

    @property
    def heartbeat_interval_s(self) -> float:
        """How often a worker tells its group it is alive: well inside the session timeout, so
        a late heartbeat or two never costs it its partitions."""
        return self.session_timeout_s / 5

    @property
    def broker_url(self) -> str:
        return f"kafka://{self.kafka_bootstrap}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
