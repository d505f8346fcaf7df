"""Prometheus metrics, served by kserve's ``/metrics`` endpoint from the default registry.

The transformer runs ONE uvicorn worker per process (see transformer/__main__.py): with
several workers each process would keep its own counters and a scrape would see one of them
at random. Scale with replicas instead; Prometheus sums across pods.

kserve's own histograms (request_preprocess_seconds, request_predict_seconds, ...) keep
working next to these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

PREFIX = "churn_transformer"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
ROW_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
STAGES = ("decode", "preprocess", "predict", "postprocess", "encode")


class BatchHistogram(Collector):
    """A histogram that takes a whole numpy batch per observation.

    prometheus_client's Histogram.observe costs a Python call per value; a 10,000-row batch
    would spend more time there than in preprocessing.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        label_names: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._label_names = list(label_names)
        self._series: dict[tuple[str, ...], tuple[npt.NDArray[np.int64], list[float]]] = {}
        registry.register(self)

    def observe_batch(self, values: npt.NDArray[np.float64], labels: tuple[str, ...]) -> None:
        counts, total = self._series.setdefault(
            labels, (np.zeros(self._bounds.size + 1, dtype=np.int64), [0.0])
        )
        # Bucket i counts values v with bounds[i-1] < v <= bounds[i] (Prometheus "le").
        counts += np.bincount(
            np.searchsorted(self._bounds, values, side="left"), minlength=counts.size
        )
        total[0] += float(values.sum())

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=self._label_names)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._label_names)
        for labels, (counts, total) in self._series.items():
            cumulative = np.cumsum(counts)
            buckets = [
                (floatToGoString(b), float(c))  # type: ignore[no-untyped-call]
                for b, c in zip(self._bounds, cumulative, strict=False)
            ]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric(list(labels), buckets, total[0])
        yield family


# The stages of an inference request, in order.
STAGES = ("decode", "preprocess", "predict", "postprocess", "encode")


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Inference API requests by outcome and HTTP status (health and metrics excluded).",
            ["outcome", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from the request arriving to the response being sent, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            f"{PREFIX}_stage_duration_seconds",
            "Time spent per stage of an inference request (a stage that rejects it is timed too).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Labelled once here: a labels() lookup per request and stage shows in batch-1 profiles.
        self.stages = {stage: self.stage_seconds.labels(stage) for stage in STAGES}
        self.auth_failures = Counter(
            f"{PREFIX}_auth_failures",
            "Requests refused with 401, by reason (missing, malformed, invalid).",
            ["reason"],
            registry=registry,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limited",
            "Requests refused with 429 because the token's bucket was empty, by token name.",
            ["token_name"],
            registry=registry,
        )
        self.validation_failures = Counter(
            f"{PREFIX}_validation_failures",
            "Requests refused with 4xx for invalid input, once per distinct reason.",
            ["reason"],
            registry=registry,
        )
        self.policy_applied = Counter(
            f"{PREFIX}_policy_applied_rows",
            "Values changed by a declared feature-spec policy (impute, unknown_zero).",
            ["feature", "policy"],
            registry=registry,
        )
        self.batch_rows = Histogram(
            f"{PREFIX}_batch_rows",
            "Rows per successful inference request.",
            buckets=ROW_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            f"{PREFIX}_predictions",
            "Predicted rows by model version and class (churn, no_churn).",
            ["model_version", "predicted_class"],
            registry=registry,
        )
        self.churn_probability = BatchHistogram(
            f"{PREFIX}_churn_probability",
            "Predicted churn probability per row, by model version.",
            PROBABILITY_BUCKETS,
            ["model_version"],
            registry,
        )
        self.model_info = Gauge(
            f"{PREFIX}_model_info",
            "The model bundle this transformer serves (value is always 1).",
            ["model_name", "model_version", "threshold"],
            registry=registry,
        )
