"""All transformer configuration, read from CHURN_TRANSFORMER_<FIELD> environment variables.

KServe's own flags (--model_name, --predictor_host, --predictor_protocol, --http_port) are
parsed by kserve's argument parser; everything specific to this transformer lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# kserve's --predictor_protocol values this transformer speaks: v2 gRPC or v2 REST.
PredictorProtocol = Literal["grpc-v2", "v2"]
PredictorEncoding = Literal["json", "binary"]
DEFAULT_PREDICTOR_ENCODING: PredictorEncoding = "json"
# The collocated runtime is one process answering one request at a time: more connections only
# move the queue from the transformer into the runtime's socket buffers.
DEFAULT_PREDICTOR_MAX_CONNECTIONS = 16


class TransformerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_TRANSFORMER_", extra="forbid")

    bundle_uri: str = Field(
        description="Model bundle version directory (parent of model/): a local path or s3://…",
    )
    tokens_file: Path = Field(
        Path("/etc/churn/tokens/tokens.json"),
        description='JSON {"token name": "token", ...} mounted from a Secret; reloaded on change.',
    )
    rate_limit_per_second: float = Field(
        50.0, gt=0, description="Sustained requests per second allowed for each token."
    )
    rate_limit_burst: int = Field(
        100, ge=1, description="Requests a token may send at once before the rate applies."
    )
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Larger request bodies get 413 before parsing."
    )
    max_batch_rows: int = Field(50_000, ge=1, description="Larger batches get 413.")
    predictor_timeout_seconds: float = Field(
        10.0, gt=0, description="Per call to the predictor; exceeding it answers 503."
    )
    predictor_max_connections: int = Field(
        DEFAULT_PREDICTOR_MAX_CONNECTIONS,
        ge=1,
        description="With --predictor_protocol v2 only (grpc-v2 multiplexes every call on "
        "one channel): open connections to the predictor at most; more concurrent calls wait "
        "for one, and the wait counts toward predictor_timeout_seconds.",
    )
    predictor_encoding: PredictorEncoding = Field(
        DEFAULT_PREDICTOR_ENCODING,
        description="With --predictor_protocol v2 only (grpc-v2 always sends raw FP64 "
        "tensors): how the FP64 matrix travels to the predictor, plain v2 JSON or the v2 "
        "binary tensor extension. JSON is the default: at 100 and 1,000 rows binary costs "
        "kserve-sklearnserver 0.20 more CPU than JSON, because it turns binary input into a "
        "Python list one value at a time (bench/results/hop.md).",
    )
