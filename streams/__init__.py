"""Tandem's engine: the pure journey core, then the adapters around it (Faust, Redis, HTTP, CLI)."""
