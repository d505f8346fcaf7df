from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from transformer.metrics import BatchHistogram


def test_batch_histogram_matches_prometheus_le_semantics() -> None:
    values = np.array([0.0, 0.1, 0.1000001, 0.5, 0.95, 1.0, 3.0])
    buckets = (0.1, 0.5, 1.0)
    registry = CollectorRegistry()
    batch = BatchHistogram("batch", "x", buckets, ["v"], registry)
    reference = Histogram("reference", "x", ["v"], buckets=buckets, registry=registry)
    batch.observe_batch(values[:3], ("a",))
    batch.observe_batch(values[3:], ("a",))
    for value in values:
        reference.labels("a").observe(value)
    for le in ("0.1", "0.5", "1.0", "+Inf"):
        assert registry.get_sample_value(
            "batch_bucket", {"v": "a", "le": le}
        ) == registry.get_sample_value("reference_bucket", {"v": "a", "le": le})
    assert registry.get_sample_value("batch_count", {"v": "a"}) == len(values)
    assert registry.get_sample_value("batch_sum", {"v": "a"}) == values.sum()
