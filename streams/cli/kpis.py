"""`tandem kpis`: the shared KPIs of marketing and sales, from every live journey.

Definitions and formulas: docs/kpis.md. The numbers are summed from the per-day aggregates in
Redis (one round trip) over the days of the event-time window asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import typer
from rich.table import Table

from streams.cli import _csv, app
from streams.cli._common import (
    check_unreachable,
    console,
    err_console,
    fail,
    parse_time,
    parse_tz,
    run,
    usage_error,
)
from streams.settings import get_settings

if TYPE_CHECKING:
    from schemas.kpis import GroupBy, KpiReport

ROWS: list[tuple[str, str, str]] = [
    # (field, label, format)
    ("journeys", "new journeys", "int"),
    ("leads", "leads", "int"),
    ("mqls", "MQLs", "int"),
    ("sals", "SALs", "int"),
    ("sqls", "SQLs", "int"),
    ("opportunities", "opportunities", "int"),
    ("customers_won", "customers won", "int"),
    ("deals_won", "deals won", "int"),
    ("deals_lost", "deals lost", "int"),
    ("churned", "churned", "int"),
    ("lead_to_customer_rate", "lead → customer", "pct"),
    ("win_rate", "win rate", "pct"),
    ("sales_cycle_days_mean", "sales cycle, mean (days)", "num"),
    ("sales_cycle_days_median", "sales cycle, median (days)", "num"),
    ("revenue", "revenue", "money"),
    ("revenue_growth", "revenue growth vs previous period", "pct"),
    ("average_revenue_per_account", "average revenue per account", "money"),
    ("gross_margin", "gross margin", "pct"),
    ("marketing_spend", "marketing spend", "money"),
    ("sales_cost", "sales cost", "money"),
    ("cost_per_lead", "cost per lead", "money"),
    ("customer_acquisition_cost", "customer acquisition cost", "money"),
    ("customer_lifetime_value", "customer lifetime value", "money"),
    ("retention_rate", "retention rate", "pct"),
    ("churn_rate", "churn rate", "pct"),
    ("nps", "NPS", "num"),
    ("form_conversion_rate", "form conversion", "pct"),
    ("marketing_roi", "marketing ROI", "pct"),
    ("handoffs", "hand-offs", "int"),
    ("handoff_sla_attainment", "hand-off SLA attainment", "pct"),
    (
        "handoff_to_first_sales_touch_hours_median",
        "hand-off → first sales touch, median (h)",
        "num",
    ),
]


def _fmt(value: Any, kind: str, currency: str | None) -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{float(value) * 100:.1f} %"
    if kind == "num":
        return f"{float(value):,.2f}"
    if kind == "money":
        return f"{float(value):,.2f} {currency or ''}".rstrip()
    return f"{value:,}"


def _utc_day_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def day_window(
    since: str | None, until: str | None, tz: tzinfo
) -> tuple[datetime | None, datetime | None, bool]:
    """The whole-UTC-day window [start, end) that covers `since` … `until` (an inclusive last
    day, or a moment), and whether it had to be widened to whole UTC days.

    The KPI aggregates are kept per UTC event-time day, so a window is whole UTC days: a time of
    day, or days counted in another `tz`, widen it to the UTC days they touch.
    """
    start = end = None
    widened = False
    if since is not None:
        moment = parse_time(since, "--since", tz)
        start = _utc_day_start(moment)
        widened |= start != moment
    if until is not None:
        moment = parse_time(until, "--until", tz, end_of_day=True)
        end = _utc_day_start(moment)
        if end != moment:
            end += timedelta(days=1)
            widened = True
    if start is not None and end is not None and start >= end:
        usage_error(f"--since {since} is not before --until {until}")
    return start, end, widened


async def _report(
    start: datetime | None,
    end: datetime | None,
    by: GroupBy | None,
    currency: str | None,
    daily: bool,
) -> KpiReport:
    from streams import kpi_service
    from streams.projection import JourneyProjection

    settings = get_settings()
    projection = JourneyProjection.from_url(settings.redis_url, settings.redis_prefix)
    try:
        return await kpi_service.report(
            projection, since=start, until=end, by=by, currency=currency, daily=daily
        )
    finally:
        await projection.close()


CSV_LEADING = ("group", "since", "until", "currency")
"""The first columns of `kpis --csv`; then every scalar KPI of `schemas.kpis.Kpis`, in order."""


def csv_columns() -> list[str]:
    """The columns of `kpis --csv`: stable, the order of the fields of `schemas.kpis.Kpis`."""
    from schemas.kpis import Kpis

    nested = {"funnel", "days_in_stage"}
    return [*CSV_LEADING, *(name for name in Kpis.model_fields if name not in nested)]


def report_csv(report: KpiReport) -> str:
    """The report as CSV: one row for everything (group `all`), then one per group of `--by`."""
    from schemas.kpis import Kpis

    window = {
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat() if report.until else None,
        "currency": report.currency,
    }
    slices: list[tuple[str, Kpis]] = [("all", report), *(report.groups or {}).items()]
    rows = [{**dict(kpis), "group": name, **window} for name, kpis in slices]
    return _csv.render(csv_columns(), rows)


def _window_title(report: KpiReport) -> str:
    # `until` is exclusive: show the last day included, the way it was asked for.
    last = (report.until - timedelta(microseconds=1)).date() if report.until else "now"
    window = f"{report.since.date() if report.since else 'the beginning'} … {last} (event time)"
    return f"[bold]Tandem KPIs[/]  {window}"


def _kpi_table(report: KpiReport) -> Table:
    """Every KPI, for all journeys and per group."""
    groups = report.groups or {}
    table = Table(title=f"KPIs{f' by {report.by}' if report.by else ''}", show_lines=False)
    table.add_column("KPI")
    table.add_column("all", justify="right", style="bold")
    for name in groups:
        table.add_column(name, justify="right")
    for field, label, kind in ROWS:
        values = [getattr(report, field)] + [getattr(g, field) for g in groups.values()]
        table.add_row(label, *(_fmt(v, kind, report.currency) for v in values))
    return table


def _funnel_table(report: KpiReport) -> Table:
    funnel = Table(title="funnel of the window's leads")
    for column in ("stage", "journeys", "conversion from the previous stage"):
        funnel.add_column(column, justify="left" if column == "stage" else "right")
    for step in report.funnel:
        funnel.add_row(step.stage.value, f"{step.journeys:,}", _fmt(step.conversion, "pct", None))
    return funnel


def _attribution_tables(report: KpiReport) -> list[Table]:
    """Won revenue credited by channel and by campaign (skipped when nothing is credited)."""
    attribution = report.attribution
    tables = []
    for dim in ("channel", "campaign"):
        models = getattr(attribution, dim)
        names = sorted(set().union(*(getattr(models, m) for m in models.model_fields)))
        if not names:
            continue
        won = _fmt(attribution.won_revenue, "money", report.currency)
        credit = Table(title=f"won revenue by {dim} ({won}), four attribution models")
        credit.add_column(dim)
        for model in models.model_fields:
            credit.add_column(model.replace("_", " "), justify="right")
        for name in names:
            credit.add_row(
                name,
                *(_fmt(getattr(models, m).get(name), "money", None) for m in models.model_fields),
            )
        tables.append(credit)
    return tables


def _persona_table(report: KpiReport) -> Table | None:
    personas = report.feedback.personas
    if not personas:
        return None
    table = Table(title="personas: who converts, who only engages")
    for column in (
        "persona",
        "engaged",
        "touches/journey",
        "leads",
        "customers",
        "lead → customer",
        "verdict",
    ):
        table.add_column(column, justify="left" if column in ("persona", "verdict") else "right")
    for name, p in personas.items():
        table.add_row(
            name,
            f"{p.engaged:,}",
            _fmt(p.touches_per_journey, "num", None),
            f"{p.leads:,}",
            f"{p.customers_won:,}",
            _fmt(p.lead_to_customer_rate, "pct", None),
            p.verdict,
        )
    return table


def _top(counts: dict[str, int]) -> str:
    """The four most heard values with their journey counts."""
    return ", ".join(f"{k} ({v})" for k, v in list(counts.items())[:4]) or "—"


def _voice_table(report: KpiReport) -> Table | None:
    voices = report.feedback.by_persona
    if not voices:
        return None
    table = Table(title="what customers tell, by persona (journeys)")
    for column in ("persona", "pain points", "motivations", "objections"):
        table.add_column(column)
    for name, v in voices.items():
        table.add_row(name, _top(v.pain_points), _top(v.motivations), _top(v.objections))
    return table


def _series_table(report: KpiReport) -> Table | None:
    if not report.series:
        return None
    table = Table(title="by event-time day (UTC)")
    for column in ("day", "leads", "MQLs", "SQLs", "won", "lost", "revenue", "spend"):
        table.add_column(column, justify="right")
    for d in report.series:
        table.add_row(
            str(d.day),
            str(d.leads),
            str(d.mqls),
            str(d.sqls),
            str(d.deals_won),
            str(d.deals_lost),
            _fmt(d.revenue, "money", None),
            _fmt(d.marketing_spend, "money", None),
        )
    return table


def render_report(report: KpiReport) -> None:
    """Print a KPI report for people: KPIs (per group), funnel, attribution, feedback."""
    console.rule(_window_title(report))
    console.print(_kpi_table(report))
    console.print(_funnel_table(report))
    for table in _attribution_tables(report):
        console.print(table)
    for optional in (_persona_table(report), _voice_table(report), _series_table(report)):
        if optional is not None:
            console.print(optional)
    if report.other_currencies:
        console.print(
            "left out (other currencies, no conversion): "
            + ", ".join(_fmt(v, "money", c) for c, v in report.other_currencies.items())
        )


def _check_options(as_json: bool, as_csv: bool, out: Path | None, by: str | None) -> None:
    """Exit 2 on an output format or slicing the command cannot honour."""
    from schemas.kpis import GroupBy

    if as_json and as_csv:
        usage_error("--json and --csv are two formats: choose one")
    if out is not None and not (as_json or as_csv):
        usage_error("--out writes --csv or --json output: add one of them")
    choices = get_args(GroupBy)
    if by is not None and by not in choices:
        usage_error(f"--by takes one of {', '.join(choices)} (got {by!r})")


def _note_whole_days(start: datetime | None, end: datetime | None) -> None:
    # On stderr: the report on stdout stays parseable, yet nobody misreads the window.
    last = (end - timedelta(days=1)).date() if end else "now"
    err_console.print(
        f"note: KPIs are kept per UTC day; the window is {start.date() if start else '…'} "
        f"… {last} (UTC, whole days)",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def kpis(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    as_csv: bool = typer.Option(
        False, "--csv", help="print the KPIs as CSV: a header row, then `all` and each --by group"
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="write the --csv or --json output to this file"
    ),
    since: str | None = typer.Option(
        None, help="first day (or moment) of the event-time window, e.g. 2025-06-01"
    ),
    until: str | None = typer.Option(
        None, help="last day, inclusive (or the moment the window ends), e.g. 2025-06-30"
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="time zone of dates and times without an offset [default: UTC]"
    ),
    by: str | None = typer.Option(
        None, help="slice by channel, campaign, persona, source or account"
    ),
    daily: bool = typer.Option(False, "--daily", help="add the counts per event-time day"),
    currency: str | None = typer.Option(
        None, help="money KPIs in this currency (default: the most used one)"
    ),
) -> None:
    """Shared KPIs: funnel, conversion, cycle, revenue, CAC, CLV, churn, NPS, SLA, attribution.

    --since and --until take a date (2025-06-01) or a time (2025-06-01T12:00,
    with or without an offset). The KPIs are kept per UTC event-time day, so the
    window is whole UTC days: a time of day or another --tz widens it to the UTC days it
    touches (said on stderr).

    Exit codes: 0 shown, 1 the aggregates could not be read, 2 a bad option,
    69 Redis unreachable.
    """
    _check_options(as_json, as_csv, out, by)
    settings = get_settings()
    start, end, widened = day_window(since, until, parse_tz(tz))
    if widened:
        _note_whole_days(start, end)
    try:
        report = run(_report(start, end, by, currency, daily))  # type: ignore[arg-type]
    except Exception as exc:
        check_unreachable(exc, redis=settings.redis_url)
        fail(f"cannot read KPI aggregates from Redis at {settings.redis_url}: {exc}")
    if as_csv:
        _csv.emit(report_csv(report), out)
    elif as_json:
        _csv.emit(report.model_dump_json(indent=2) + "\n", out)
    else:
        render_report(report)
