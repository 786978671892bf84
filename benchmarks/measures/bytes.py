"""``journey_bytes`` at 50 and 100,000 touchpoints: the table entries of one journey.

The journey of L in-order touchpoints (`journeys.long_journey`) encoded as the worker stores
it in its journeys table (`codec.entry_sizes`: a head, and segments once it is long), summed.
``journey_bytes_over_cap``: how far the longest journey's largest entry is above the cap
(`codec.journey_cap`; 0 when within it) — the cap is on what one table entry, one changelog
message, holds.
"""

from __future__ import annotations

from benchmarks.codec import entry_sizes, journey_cap
from benchmarks.context import Context, Result
from benchmarks.journeys import long_journey
from streams import journey as core


def run(ctx: Context) -> Result:
    playbook = core.default_playbook()
    cap, cap_source = journey_cap()
    metrics: dict[str, float] = {}
    notes: dict[str, str] = {}
    largest: dict[int, int] = {}
    for length in ctx.sizes.bytes_lengths:
        ctx.progress(f"journey of {length:,} touchpoints: encoding")
        sizes = entry_sizes(long_journey(length, playbook))
        metrics[f"journey_bytes_{length}"] = size = sum(sizes)
        largest[length] = max(sizes)
        notes[f"journey_bytes_{length}"] = (
            f"{size / length:,.0f} bytes per touchpoint; {len(sizes)} entries: head "
            f"{sizes[0]:,}, largest {largest[length]:,}"
        )
    longest = max(ctx.sizes.bytes_lengths)
    metrics["journey_bytes_over_cap"] = max(0, largest[longest] - cap)
    metrics["journey_bytes_longest"] = longest
    notes["journey_bytes_over_cap"] = f"cap {cap:,} ({cap_source})"
    return Result(metrics, notes, {"cap_bytes": cap, "cap_source": cap_source})
