"""The churn transformer as a kserve.Model: preprocess -> predict (remote v2 call) -> postprocess.

kserve.Model.__call__ runs the three stages and records kserve's own stage histograms. The
payload passed between stages is a small dataclass holding numpy arrays, not kserve's
InferRequest: the hot path never round-trips tensors through Python lists or pydantic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import kserve
import numpy as np
import numpy.typing as npt

from model.bundle import ServingBundle, load_serving_bundle
from model.errors import ValidationFailed
from transformer import offload
from transformer.codec import (
    CLASS_OUTPUT,
    CUSTOMER_ID_INPUT,
    OUTPUT_NAMES,
    PROBABILITY_OUTPUT,
    DecodedRequest,
    RequestDecoder,
)
from transformer.errors import RequestRejected, problem_from_field_error
from transformer.metrics import Metrics

logger = logging.getLogger(__name__)

# v2 metadata: every tensor is one value per row.
_ROWS_SHAPE = [-1]


class Predictor(Protocol):
    """A client of the runtime: v2 gRPC (transformer/grpc_predictor.py, the default) or v2
    REST (transformer/predictor.py)."""

    address: str  # where the runtime is: host:port or a URL
    transport: str  # e.g. "v2 gRPC, raw FP64 tensors", for the startup log

    async def predict_proba(
        self, matrix: npt.NDArray[np.float64], request_id: str
    ) -> npt.NDArray[np.float64]: ...

    async def ready(self) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    request: DecodedRequest
    request_id: str
    matrix: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    request: DecodedRequest
    probabilities: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChurnAnswer:
    request: DecodedRequest
    probabilities: npt.NDArray[np.float64]
    churn: npt.NDArray[np.bool_]


class ChurnTransformer(kserve.Model):  # type: ignore[misc]  # kserve ships no type hints
    def __init__(
        self,
        name: str,
        bundle_uri: str,
        predictor: Predictor,
        metrics: Metrics,
        max_batch_rows: int,
    ) -> None:
        super().__init__(name)
        self.bundle_uri = bundle_uri
        self.predictor = predictor
        self.metrics = metrics
        self.max_batch_rows = max_batch_rows
        self._bundle: ServingBundle | None = None
        self._decoder: RequestDecoder | None = None

    def load(self) -> bool:
        bundle = load_serving_bundle(self.bundle_uri)
        self._decoder = RequestDecoder(
            numeric=[n.name for n in bundle.spec.numeric],
            categorical=[c.name for c in bundle.spec.categorical],
            max_rows=self.max_batch_rows,
        )
        self._bundle = bundle
        self._prediction_counters = (
            self.metrics.predictions.labels(bundle.version, "churn"),
            self.metrics.predictions.labels(bundle.version, "no_churn"),
        )
        self.metrics.model_info.labels(self.name, bundle.version, f"{bundle.threshold:g}").set(1)
        logger.info(
            "loaded bundle %s: version %s, %d model features, threshold %g",
            bundle.uri,
            bundle.version,
            len(bundle.spec.feature_names),
            bundle.threshold,
        )
        self.ready = True
        return True

    @property
    def bundle(self) -> ServingBundle:
        if self._bundle is None:
            raise RuntimeError("load() has not been called")
        return self._bundle

    @property
    def decoder(self) -> RequestDecoder:
        if self._decoder is None:
            raise RuntimeError("load() has not been called")
        return self._decoder

    def get_input_types(self) -> list[dict[str, Any]]:
        """v2 model metadata: one tensor per feature, then the optional customerID.

        Numbers are advertised as INT64 or FP64 (BYTES text is accepted too, docs/api.md).
        """
        spec = self.bundle.spec
        numeric = [
            {"name": n.name, "datatype": "INT64" if n.integer else "FP64", "shape": _ROWS_SHAPE}
            for n in spec.numeric
        ]
        categorical = [
            {"name": c.name, "datatype": "BYTES", "shape": _ROWS_SHAPE} for c in spec.categorical
        ]
        customer_id = {"name": CUSTOMER_ID_INPUT, "datatype": "BYTES", "shape": _ROWS_SHAPE}
        return [*numeric, *categorical, customer_id]

    def get_output_types(self) -> list[dict[str, Any]]:
        """v2 model metadata; customerID is answered only when it was sent."""
        datatypes = {PROBABILITY_OUTPUT: "FP64", CLASS_OUTPUT: "BOOL", CUSTOMER_ID_INPUT: "BYTES"}
        return [
            {"name": name, "datatype": datatypes[name], "shape": _ROWS_SHAPE}
            for name in OUTPUT_NAMES
        ]

    def validate(self, payload: Any) -> Any:
        # kserve's default checks dict/InferRequest payloads; ours is a PreparedBatch.
        return payload

    async def preprocess(
        self, payload: DecodedRequest, headers: dict[str, str] | None = None
    ) -> PreparedBatch:
        with self.metrics.stages["preprocess"].time():
            try:
                transformed = await offload.run(
                    partial(self.bundle.spec.transform, payload.columns),
                    large=offload.large_batch(payload.rows),
                )
            except ValidationFailed as exc:
                raise RequestRejected(
                    400,
                    "invalid values",
                    [problem_from_field_error(e) for e in exc.errors],
                    exc.total,
                ) from None
        for (feature, policy), count in transformed.applied.items():
            self.metrics.policy_applied.labels(feature, policy).inc(count)
        request_id = (headers or {}).get("x-request-id", "")
        return PreparedBatch(payload, request_id, transformed.matrix)

    async def predict(
        self,
        payload: PreparedBatch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> ScoredBatch:
        with self.metrics.stages["predict"].time():
            probabilities = await self.predictor.predict_proba(payload.matrix, payload.request_id)
        return ScoredBatch(payload.request, probabilities)

    def postprocess(
        self,
        result: ScoredBatch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> ChurnAnswer:
        with self.metrics.stages["postprocess"].time():
            bundle = self.bundle
            churn = result.probabilities >= bundle.threshold
            churned = int(np.count_nonzero(churn))
            predicted_churn, predicted_no_churn = self._prediction_counters
            predicted_churn.inc(churned)
            predicted_no_churn.inc(churn.size - churned)
            self.metrics.churn_probability.observe_batch(result.probabilities, (bundle.version,))
            self.metrics.batch_rows.observe(churn.size)
        return ChurnAnswer(result.request, result.probabilities, churn)
