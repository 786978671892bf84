"""What Tandem keeps and emits: journey snapshots, signals, KPIs, the playbook, dead letters.

The JSON Schema documents in `schemas/json/` are generated from these models (and from the
touchpoint models in `events`) and checked in: the language-neutral contract.
"""
