"""The benchmark harness: ``python bench/run.py [--quick]`` (``make bench``, ``make bench-quick``).

Each measurement times ratify through its service layer (``engine.runtime``) beside its limit, the
same work done by the raw driver or a plain loop in the same run on the same data, and says how
far ratify is from it (``ratio``: 1.0 is at the limit, higher is better).
"""
