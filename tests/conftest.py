"""Shared by every test directory: the real-stack session fixtures.

The session fixtures of `tests.stack` (`settings`, `worker`, `projection`, …) are a plugin so
``tests/browser`` runs against the same session's Kafka topics, worker and Redis prefix as
``tests/integration`` — one worker per session, whichever directories run.
"""

pytest_plugins = ["tests.stack"]
