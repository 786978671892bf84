"""The journey workflow: typed messages, their handlers, and the ports they work on.

Between the pure core (`streams.journey`) and the adapters (Faust, Redis): the worker's agents
decode messages, call these handlers through a unit of work, and flush what it changed and
queued; `tandem replay` runs the same handlers on in-memory ports. No Faust, Kafka or Redis
here (checked by `lint-imports`).
"""

from streams.workflow.replay import Replayer, ReplayResult, replay

__all__ = ["ReplayResult", "Replayer", "replay"]
