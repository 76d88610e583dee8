"""The garbage collector, tuned for a long-running service process (API or worker)."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between collections of the youngest generation (Python's default: 700)


def settle() -> None:
    """What is loaded by now (modules, the schema, models) lives as long as the process: the collector stops
    scanning it (gc.freeze), and runs less often. A list of 50 customers allocates ~7,000 containers, an import
    batch far more; at the default threshold of 700 the collector ran ten times a request, promoting its
    objects to older generations and scanning the whole heap every few requests (~20 ms a request, measured:
    docs/BENCHMARKS.md, "API read path")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
