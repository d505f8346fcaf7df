"""The transformer -> runtime hop: CPU per request of each way to call kserve-sklearnserver.

    python -m bench.hop [--runs 5] [--seconds 1.5]

The same harness as bench/client.py (a bundle trained on 2,000 rows, kserve-sklearnserver in
its own process, every arm checked against the reference and against the first arm, then
interleaved closed-loop runs at 8 concurrent calls with batches of 1, 100 and 1,000 rows of the
FP64 model matrix), with the arms the transformer could use to reach the runtime:

- json, binary: the transformer's own client (transformer/predictor.py) with each
  CHURN_TRANSFORMER_PREDICTOR_ENCODING, so the bytes on the wire are the transformer's.
- grpc-stubs: grpcio with kserve's generated v2 stubs, the matrix in raw_input_contents; the
  least work a gRPC client in the transformer could do.
- grpc-kserve: kserve's InferenceGRPCClient with InferRequest/InferInput, as documented.

The hop's cost is client CPU (this process) plus server CPU (from /proc) per request. Writes
bench/results/hop.json and hop.md; the decision rule it applies is in bench/README.md.
"""

from __future__ import annotations

import sys
from typing import Any

import grpc  # type: ignore[import-untyped]
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest, ModelInferResponse
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devstack.stack import MODEL_NAME, Service
from transformer.codec import PREDICTOR_INPUT
from transformer.predictor import PredictorClient
from transformer.settings import PredictorEncoding

from .client import (
    TIMEOUT_SECONDS,
    Arms,
    Matrix,
    Measured,
    compare,
    comparison_table,
    parse_args,
    per_run,
    run,
    run_header,
    summary_table,
    versions,
    write,
)

HOP_CPU = "client_and_server_cpu_ms_per_request"
JSON: PredictorEncoding = "json"
BINARY: PredictorEncoding = "binary"
GRPC_ARMS = ("grpc-stubs", "grpc-kserve")
RULE = (
    "on client + server CPU per request, binary replaces JSON as the transformer's default if "
    "its median is lower by more than the spread (the wider of the two interquartile ranges "
    "over runs) at batch 100 and at batch 1,000, and higher by more than the spread at no batch "
    "size. A gRPC arm is cheapest if, by the same rule, it beats that default at batch 100 and "
    "1,000 and loses at no batch size."
)
# Unlimited message sizes, as InferenceGRPCClient sets them; a batch of 1,000 fits either way.
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def _grpc_address(server: Service) -> str:
    if server.grpc_port is None:
        raise RuntimeError(f"{server.name} serves no gRPC port")
    return f"127.0.0.1:{server.grpc_port}"


def _positive_class(probabilities: Matrix, rows: int) -> Matrix:
    if probabilities.shape != (rows, 2):
        raise RuntimeError(f"expected probabilities [{rows}, 2], got {list(probabilities.shape)}")
    return probabilities[:, 1].astype(np.float64)


class GrpcStubClient:
    """grpcio on kserve's generated stubs: one ModelInferRequest with the raw FP64 bytes."""

    def __init__(self, server: Service) -> None:
        self._channel = grpc.aio.insecure_channel(_grpc_address(server), options=CHANNEL_OPTIONS)
        self._infer = GRPCInferenceServiceStub(self._channel).ModelInfer

    async def predict_proba(self, matrix: Matrix, request_id: str) -> Matrix:
        tensor = ModelInferRequest.InferInputTensor(
            name=PREDICTOR_INPUT, datatype="FP64", shape=matrix.shape
        )
        request = ModelInferRequest(
            model_name=MODEL_NAME,
            id=request_id,
            inputs=[tensor],
            raw_input_contents=[np.ascontiguousarray(matrix, dtype="<f8").tobytes()],
        )
        response: ModelInferResponse = await self._infer(request, timeout=TIMEOUT_SECONDS)
        output = response.outputs[0]
        if output.datatype != "FP64" or len(response.raw_output_contents) != 1:
            raise RuntimeError(f"expected one raw FP64 output, got {output}")
        raw = np.frombuffer(response.raw_output_contents[0], dtype="<f8")
        return _positive_class(raw.reshape(tuple(output.shape)), matrix.shape[0])

    async def aclose(self) -> None:
        await self._channel.close()


class KserveGrpcClient:
    """kserve's InferenceGRPCClient, the request built as its documentation shows."""

    def __init__(self, server: Service) -> None:
        self._client = InferenceGRPCClient(_grpc_address(server), timeout=TIMEOUT_SECONDS)

    async def predict_proba(self, matrix: Matrix, request_id: str) -> Matrix:
        tensor = InferInput(PREDICTOR_INPUT, list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=True)
        response = await self._client.infer(InferRequest(MODEL_NAME, [tensor], request_id))
        return _positive_class(response.outputs[0].as_numpy(), matrix.shape[0])

    async def aclose(self) -> None:
        await self._client.close()


ARMS: Arms = {
    JSON: lambda server: PredictorClient(server.url, MODEL_NAME, TIMEOUT_SECONDS, JSON),
    BINARY: lambda server: PredictorClient(server.url, MODEL_NAME, TIMEOUT_SECONDS, BINARY),
    "grpc-stubs": GrpcStubClient,
    "grpc-kserve": KserveGrpcClient,
}


def _beats(comparisons: dict[str, dict[str, Any]]) -> bool:
    """Wins at batch 100 and 1,000, loses at no batch size."""
    wins = all(comparisons[size]["wins"] for size in ("100", "1000"))
    return wins and not any(c["loses"] for c in comparisons.values())


def decide(measured: Measured) -> dict[str, Any]:
    """RULE, on client + server CPU per request."""
    cpu = per_run(measured, HOP_CPU)
    binary_vs_json = {size: compare(arms[BINARY], arms[JSON]) for size, arms in cpu.items()}
    default = BINARY if _beats(binary_vs_json) else JSON
    grpc_vs_default = {
        arm: {size: compare(arms[arm], arms[default]) for size, arms in cpu.items()}
        for arm in GRPC_ARMS
    }
    return {
        "binary_vs_json": binary_vs_json,
        "default_encoding": default,
        "grpc_vs_default": grpc_vs_default,
        "grpc_cheapest": [arm for arm, c in grpc_vs_default.items() if _beats(c)],
    }


def markdown(results: dict[str, Any]) -> str:
    decision = results["decision"]
    default = decision["default_encoding"]
    lines = [run_header(results), ""]
    lines += summary_table(
        results,
        {
            HOP_CPU: ("client + server CPU ms / request", 3),
            "client_cpu_ms_per_request": ("client CPU ms / request", 3),
            "server_cpu_ms_per_request": ("server CPU ms / request", 3),
            "requests_per_second": ("requests / s", 0),
        },
    )
    lines += ["", "Client + server CPU per request, binary against JSON:", ""]
    lines += comparison_table(
        {size: {JSON: c} for size, c in decision["binary_vs_json"].items()}, BINARY, "ms"
    )
    for arm, versus in decision["grpc_vs_default"].items():
        lines += ["", f"Client + server CPU per request, {arm} against {default}:", ""]
        lines += comparison_table({size: {default: c} for size, c in versus.items()}, arm, "ms")
    cheapest = ", ".join(decision["grpc_cheapest"]) or "none"
    lines += [
        "",
        f"Rule: {decision['rule']} Decision: the transformer's default encoding is **{default}**; "
        f"gRPC arms cheaper than it: **{cheapest}**.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "bench.hop", __doc__)
    summarised = (
        HOP_CPU,
        "client_cpu_ms_per_request",
        "server_cpu_ms_per_request",
        "requests_per_second",
    )
    results = run(ARMS, args, summarised)
    results["versions"] = versions("httptools", "kserve", "grpcio", "protobuf")
    results["decision"] = {**decide(results["runs_measured"]), "rule": RULE}
    write(results, args.output, "hop", markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
