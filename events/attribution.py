"""The campaign and channel a touchpoint is attributed to: its own, else its UTM tags.

Tools that know Tandem's vocabulary send ``context.campaign_id`` and ``context.channel``; web
analytics and marketing tools send UTM parameters. An explicit value always wins; only when it
is absent do the UTM tags stand in:

- campaign: ``utm_campaign``, as sent;
- channel: ``utm_medium`` through `MEDIUM_CHANNELS`; without a medium, ``utm_source`` through
  `SOURCE_CHANNELS`; a medium or source not in the tables is ``other`` (never the raw tag, so
  the channel list stays a small vocabulary whatever the tools send).

Matching ignores case and treats ``-``, space and ``_`` alike (``Paid-Social`` is
``paid_social``).
"""

from __future__ import annotations

import re

from events.envelope import Context

OTHER_CHANNEL = "other"
"""The channel of UTM-tagged traffic whose medium (or source) is not in the tables."""

MEDIUM_CHANNELS: dict[str, str] = {
    **dict.fromkeys(("cpc", "ppc", "paid", "paid_search", "paidsearch", "sem"), "paid_search"),
    **dict.fromkeys(("organic", "organic_search", "seo"), "organic_search"),
    **dict.fromkeys(("email", "e_mail", "newsletter", "mail"), "email"),
    **dict.fromkeys(
        ("social", "social_media", "organic_social", "paid_social", "paidsocial", "sm"), "social"
    ),
    **dict.fromkeys(("display", "banner", "cpm", "programmatic"), "display"),
    **dict.fromkeys(("referral", "affiliate", "partner"), "referral"),
    **dict.fromkeys(("event", "events", "webinar", "conference"), "event"),
    **dict.fromkeys(("outbound", "sdr", "sales"), "outbound"),
    **dict.fromkeys(("none", "(none)", "direct"), "direct_traffic"),
}
"""``utm_medium`` (normalised) → Tandem channel."""

SOURCE_CHANNELS: dict[str, str] = {
    **dict.fromkeys(
        ("linkedin", "facebook", "twitter", "x", "instagram", "youtube", "tiktok", "reddit"),
        "social",
    ),
    **dict.fromkeys(("newsletter", "email", "mailchimp", "hubspot_email"), "email"),
    **dict.fromkeys(("google", "bing", "duckduckgo"), "organic_search"),
    **dict.fromkeys(("direct", "(direct)"), "direct_traffic"),
}
"""``utm_source`` (normalised) → Tandem channel, used only when there is no ``utm_medium``."""

_SEPARATORS = re.compile(r"[\s\-_]+")


def _tag(value: str) -> str:
    return _SEPARATORS.sub("_", value.strip().lower())


def attributed_campaign(context: Context) -> str | None:
    """``campaign_id``, else ``utm_campaign``, else None."""
    return context.campaign_id or context.utm_campaign


def attributed_channel(context: Context) -> str | None:
    """``channel``, else the channel the UTM medium (or source) maps to, else None."""
    if context.channel is not None:
        return context.channel
    if context.utm_medium is not None:
        return MEDIUM_CHANNELS.get(_tag(context.utm_medium), OTHER_CHANNEL)
    if context.utm_source is not None:
        return SOURCE_CHANNELS.get(_tag(context.utm_source), OTHER_CHANNEL)
    return None
