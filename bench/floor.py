"""The floors: the same computation in this process, with no network, server or JSON.

- floor-spec: FeatureSpec.transform (the transformer's numpy preprocessing) plus the bundle's
  LogisticRegression.predict_proba: the compute the chain cannot avoid.
- floor-sklearn: the full scikit-learn Pipeline.predict_proba on a pandas frame: what the
  peers compute per request, before their own serving overhead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .payloads import Batch, Reference
from .report import percentile_summary

Compute = Callable[[Batch], np.ndarray]


def floors(reference: Reference) -> dict[str, tuple[str, Compute]]:
    def spec_then_model(batch: Batch) -> np.ndarray:
        matrix = reference.spec.transform(batch.columns).matrix
        return np.asarray(reference.classifier.predict_proba(matrix)[:, 1])

    def sklearn_pipeline(batch: Batch) -> np.ndarray:
        return np.asarray(reference.pipeline.predict_proba(batch.frame)[:, 1])

    return {
        "floor-spec": ("Floor: FeatureSpec + predict_proba, in-process", spec_then_model),
        "floor-sklearn": ("Floor: sklearn Pipeline.predict_proba, in-process", sklearn_pipeline),
    }


def measure(
    compute: Compute, batches: list[Batch], *, warmup_seconds: float, seconds: float
) -> dict[str, Any]:
    """Call ``compute`` back to back over the batches for ``seconds``: one phase record."""
    deadline = time.perf_counter() + warmup_seconds
    index = 0
    while time.perf_counter() < deadline:
        compute(batches[index % len(batches)])
        index += 1
    latencies: list[float] = []
    cpu_started, started = time.process_time(), time.perf_counter()
    deadline = started + seconds
    while (now := time.perf_counter()) < deadline:
        compute(batches[len(latencies) % len(batches)])
        latencies.append(time.perf_counter() - now)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    requests = len(latencies)
    rows = batches[0].rows
    return {
        "batch": rows,
        "concurrency": 1,
        "seconds": round(wall, 3),
        "requests": requests,
        "requests_per_second": round(requests / wall, 1),
        "rows_per_second": round(requests * rows / wall, 1),
        "latency_ms": percentile_summary(np.asarray(latencies) * 1000),
        "errors": {},
        "error_count": 0,
        "cpu_seconds": {"in-process": round(cpu, 3)},
        "cpu_ms_per_request": {"in-process": round(cpu / requests * 1000, 4)},
        "cpu_seconds_per_1000_rows": {"in-process": round(cpu / (requests * rows) * 1000, 5)},
    }
