"""`tandem kpis --csv` and `tandem journeys --csv` against the real Redis read model.

The sample journeys are replayed offline and written to Redis as the worker writes them (under
a prefix of this test's own); the CSV the commands print is parsed back with the csv module
and compared with the KPI report and the journey snapshots read directly.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from streams import infra, kpi_service, workflow
from streams import journey as core
from streams.adapters.journeys import prepare, read_model_batch
from streams.cli.journeys import columns as journey_columns
from streams.cli.kpis import csv_columns
from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def prefix(infrastructure: infra.InfraStatus) -> Iterator[str]:
    """A Redis prefix holding the sample journeys, written as the worker writes them."""
    from events import parse_touchpoint

    own = f"tandem-csv-{uuid.uuid4().hex[:8]}:"
    playbook = core.default_playbook()
    result = workflow.replay([parse_touchpoint(d) for d in demo_journeys(NOW)], playbook)
    writes = [prepare(cid, record, playbook) for cid, record in result.records.items()]
    live, moved = read_model_batch(writes)

    async def write() -> None:
        projection = JourneyProjection.from_url(Settings().redis_url, own)
        try:
            await projection.publish_many(live, moved)
        finally:
            await projection.close()

    async def clean() -> None:
        projection = JourneyProjection.from_url(Settings().redis_url, own)
        try:
            keys = [k async for k in projection.redis.scan_iter(f"{own}*")]
            if keys:
                await projection.redis.delete(*keys)
        finally:
            await projection.close()

    asyncio.run(write())
    yield own
    asyncio.run(clean())


def tandem(prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TANDEM_REDIS_PREFIX": prefix, "TANDEM_REDIS_URL": Settings().redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def parse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return list(reader.fieldnames or []), list(reader)


def report(prefix: str) -> Any:
    async def read() -> Any:
        projection = JourneyProjection.from_url(Settings().redis_url, prefix)
        try:
            return await kpi_service.report(projection, by="channel")
        finally:
            await projection.close()

    return asyncio.run(read())


def test_kpis_csv_is_the_report_one_row_per_group(prefix: str) -> None:
    header, rows = parse(tandem(prefix, "kpis", "--csv", "--by", "channel").stdout)
    expected = report(prefix)
    assert header == csv_columns()
    assert header[:4] == ["group", "since", "until", "currency"]
    assert [row["group"] for row in rows] == ["all", *(expected.groups or {})]
    all_row = rows[0]
    assert int(all_row["leads"]) == expected.leads > 0
    assert int(all_row["customers_won"]) == expected.customers_won == 1
    assert Decimal(all_row["revenue"]) == expected.revenue > 0
    assert all_row["currency"] == expected.currency
    for row, (_, kpis) in zip(rows[1:], (expected.groups or {}).items(), strict=True):
        assert int(row["mqls"]) == kpis.mqls
        assert (row["nps"] or None) == (None if kpis.nps is None else str(kpis.nps))


def test_kpis_csv_to_a_file_and_its_formats_exclusive(prefix: str, tmp_path: Path) -> None:
    out = tmp_path / "kpis.csv"
    done = tandem(prefix, "kpis", "--csv", "-o", str(out))
    assert done.stdout == ""
    header, rows = parse(out.read_text(encoding="utf-8"))
    assert header == csv_columns() and [r["group"] for r in rows] == ["all"]
    both = subprocess.run(
        [sys.executable, "-m", "streams.cli", "kpis", "--csv", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert both.returncode == 2 and "choose one" in both.stderr


def test_journeys_csv_lists_every_journey_newest_touch_first(prefix: str) -> None:
    header, rows = parse(tandem(prefix, "journeys", "--csv").stdout)
    snapshots = json.loads(tandem(prefix, "journeys", "--json").stdout)
    assert header == journey_columns()
    assert header[:3] == ["customer_id", "identities", "stage"]
    assert [r["customer_id"] for r in rows] == [s["customer_id"] for s in snapshots]
    assert len(rows) == 5 and core.LEDGER_CUSTOMER not in {r["customer_id"] for r in rows}
    touches = [r["last_touch_at"] for r in rows]
    assert touches == sorted(touches, reverse=True)
    for row, snapshot in zip(rows, snapshots, strict=True):
        assert row["identities"].split(";") == snapshot["identities"]
        assert float(row["engagement"]) == snapshot["engagement"]
        assert row["stage"] == snapshot["stage"]
    mqls = parse(tandem(prefix, "journeys", "--csv", "--stage", "mql").stdout)[1]
    assert [r["customer_id"] for r in mqls] == [
        r["customer_id"] for r in rows if r["stage"] == "mql"
    ]
    assert len(parse(tandem(prefix, "journeys", "--csv", "-n", "2").stdout)[1]) == 2
