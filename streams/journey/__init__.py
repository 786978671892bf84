"""The pure journey core: touchpoints in, journeys and signals out. No I/O, no clock.

A journey is a set of touchpoints; stage, scores and signals are a deterministic fold over it
under a `Playbook` (see docs/journey.md). The Faust worker, the CLI and the tests use only the
names exported here.
"""

from events.vocabulary import Touchpoint
from schemas.journey import JourneyRecord, JourneySnapshot, Stage
from schemas.playbook import Playbook
from schemas.signals import (
    HandoffRevokedSignal,
    HandoffSignal,
    HandoffSlaBreachedSignal,
    HandoffSlaEscalatedSignal,
    NurtureSignal,
    Signal,
)
from streams.journey.account import (
    account_handoff_signal,
    account_of,
    account_signal_id,
    account_view,
)
from streams.journey.identity import (
    LEDGER_CUSTOMER,
    IdentityDecision,
    IdentityGuards,
    IdentityStore,
    InMemoryIdentityStore,
    Move,
    UnmergeDecision,
    UnmergeError,
    customer_id_for,
    resolve,
    signal_id,
    unmerge_identity,
)
from streams.journey.memo import keep_at_most as keep_fold_states
from streams.journey.playbook import (
    PlaybookError,
    default_playbook,
    load_playbook,
    load_playbook_file,
)
from streams.journey.record import (
    MAX_RETAINED_TOUCHPOINTS,
    Outcome,
    Split,
    absorb,
    apply_touchpoint,
    apply_touchpoints,
    evaluate_timers,
    fold,
    merge,
    new_journey,
    next_timer_due,
    receive_split,
    reevaluate,
    resplit,
    split,
)
from streams.journey.view import JourneyView, snapshot, snapshot_json, view

__all__ = [
    "LEDGER_CUSTOMER",
    "MAX_RETAINED_TOUCHPOINTS",
    "HandoffRevokedSignal",
    "HandoffSignal",
    "HandoffSlaBreachedSignal",
    "HandoffSlaEscalatedSignal",
    "IdentityDecision",
    "IdentityGuards",
    "IdentityStore",
    "InMemoryIdentityStore",
    "JourneyRecord",
    "JourneySnapshot",
    "JourneyView",
    "Move",
    "NurtureSignal",
    "Outcome",
    "Playbook",
    "PlaybookError",
    "Signal",
    "Split",
    "Stage",
    "Touchpoint",
    "UnmergeDecision",
    "UnmergeError",
    "absorb",
    "account_handoff_signal",
    "account_of",
    "account_signal_id",
    "account_view",
    "apply_touchpoint",
    "apply_touchpoints",
    "customer_id_for",
    "default_playbook",
    "evaluate_timers",
    "fold",
    "keep_fold_states",
    "load_playbook",
    "load_playbook_file",
    "merge",
    "new_journey",
    "next_timer_due",
    "receive_split",
    "reevaluate",
    "resolve",
    "resplit",
    "signal_id",
    "snapshot",
    "snapshot_json",
    "split",
    "unmerge_identity",
    "view",
]
