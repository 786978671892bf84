"""Adapters: the workflow's ports on Faust tables, Kafka and Redis (used by `streams.app`)."""
