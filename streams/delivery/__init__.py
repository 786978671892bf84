"""Getting signals out of Kafka to the tools that act on them.

* `streams.delivery.subscriber` — a consumer-group reader of the signal topics that commits
  what it has handled and deduplicates (signal_id, version) within a run (`tandem subscribe`).
* `streams.delivery.webhooks` — signed HTTP delivery of every signal to configured URLs, with
  bounded, jittered retries and a dead-letter topic (`tandem webhooks`).

Both are at-least-once: an offset is committed only after its signal was handled, so a crash
re-delivers. Receivers deduplicate by ``(signal_id, version)`` and keep the highest version
per ``signal_id`` (see `schemas.signals`).
"""
