"""Seeded data builders for tests and benchmarks (``from builders.ctr import ...``; ``tests`` is on the path)."""
