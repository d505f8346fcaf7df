"""``python -m transformer``: the churn transformer on kserve's ModelServer.

KServe's controller passes --model_name, --predictor_host and --http_port; pass
--predictor_protocol yourself (the controller does not):

- grpc-v2 (the chart's and the local stack's choice): --predictor_host is host:port of the
  runtime's v2 gRPC port; the matrix travels as raw FP64 tensors (transformer/grpc_predictor.py).
- v2: --predictor_host is host:port of its v2 REST port; CHURN_TRANSFORMER_PREDICTOR_ENCODING
  picks JSON or binary tensors (transformer/predictor.py).

Everything else comes from CHURN_TRANSFORMER_* variables (transformer/settings.py).

One process, one uvicorn worker: with --workers > 1 kserve forks workers whose Prometheus
counters are separate, so /metrics would show whichever worker answered the scrape. Scale
with replicas (HPA) instead.

kserve's flags that this transformer would ignore are refused (IGNORED_FLAGS) rather than
silently dropped.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import get_args

from kserve import logging as kserve_logging
from kserve import model_server as kserve_model_server
from kserve.predictor_config import PredictorConfig
from pydantic import ValidationError

from model.errors import BundleError
from transformer.audit import AuditTrail
from transformer.auth import TokenFileError, TokenStore
from transformer.grpc_predictor import GrpcPredictorClient
from transformer.metrics import Metrics
from transformer.model import ChurnTransformer, Predictor
from transformer.predictor import PredictorClient
from transformer.server import ChurnModelServer, install
from transformer.settings import (
    DEFAULT_PREDICTOR_ENCODING,
    PredictorProtocol,
    TransformerSettings,
)

GRPC_V2: PredictorProtocol = "grpc-v2"
ENCODING_VARIABLE = "CHURN_TRANSFORMER_PREDICTOR_ENCODING"

_GRPC_OFF = "gRPC is off (it would bypass the bearer token check)"
# kserve flags the transformer does not act on, and why: refused unless left at their default.
IGNORED_FLAGS = {
    "enable_grpc": _GRPC_OFF,
    "grpc_port": _GRPC_OFF,
    "max_threads": _GRPC_OFF,
    "grpc_max_send_message_length": _GRPC_OFF,
    "grpc_max_receive_message_length": _GRPC_OFF,
    "enable_latency_logging": "the audit line carries every request's latency",
    "enable_docs_url": "/docs is not served; only the routes in docs/api.md are",
    "access_log_format": "the audit line is the access log (uvicorn's is off: it would log "
    "query strings)",
    "protocol": "it is deprecated; pass --predictor_protocol grpc-v2 or v2",
    "predictor_request_timeout_seconds": "set CHURN_TRANSFORMER_PREDICTOR_TIMEOUT_SECONDS",
    "predictor_request_retries": "predictor calls are not retried; a failure answers 503",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m transformer",
        description="Churn transformer: bearer tokens, validation and feature preprocessing in "
        "front of a v2 sklearn predictor.",
        parents=[kserve_model_server.parser],
    )
    # kserve turns these on by default; here only an explicit "true" asks for them.
    parser.set_defaults(enable_grpc=False, enable_latency_logging=False)
    args = parser.parse_args(argv)
    for flag, reason in IGNORED_FLAGS.items():
        if getattr(args, flag) != parser.get_default(flag):
            parser.error(f"--{flag} is not supported by this transformer: {reason}")
    if args.workers != 1:
        parser.error("--workers must be 1: metrics would split across workers; scale replicas")
    if args.predictor_protocol not in get_args(PredictorProtocol):
        parser.error(
            "--predictor_protocol must be grpc-v2 or v2 (the predictor speaks v2 gRPC or REST)"
        )
    if not args.predictor_host:
        parser.error("--predictor_host is required (host:port of the v2 predictor)")
    if args.predictor_protocol == GRPC_V2:
        if args.predictor_use_ssl:
            parser.error(
                "--predictor_use_ssl is not supported with --predictor_protocol grpc-v2: the "
                "runtime is collocated and called on localhost in plaintext"
            )
        encoding = os.environ.get(ENCODING_VARIABLE)
        if encoding not in (None, DEFAULT_PREDICTOR_ENCODING):
            parser.error(
                f"{ENCODING_VARIABLE}={encoding} applies to --predictor_protocol v2 only: "
                "grpc-v2 always sends raw FP64 tensors"
            )
    return args


def configure_logging(args: argparse.Namespace) -> None:
    if args.configure_logging:
        kserve_logging.configure_logging(args.log_config_file)
    ours = logging.getLogger("transformer")
    ours.handlers = list(kserve_logging.logger.handlers)
    ours.setLevel(logging.INFO)
    ours.propagate = False
    # kserve's timing middleware logs two lines per request at INFO; the audit line replaces them.
    kserve_logging.trace_logger.setLevel(logging.WARNING)
    # uvicorn's access log prints the query string, where a client may have put a token; the
    # audit line (path only) replaces it. No handler anywhere: uvicorn then skips it entirely.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def predictor_client(args: argparse.Namespace, settings: TransformerSettings) -> Predictor:
    if args.predictor_protocol == GRPC_V2:
        return GrpcPredictorClient(
            args.predictor_host, args.model_name, settings.predictor_timeout_seconds
        )
    scheme = "https" if args.predictor_use_ssl else "http"
    return PredictorClient(
        f"{scheme}://{args.predictor_host}",
        args.model_name,
        settings.predictor_timeout_seconds,
        settings.predictor_encoding,
        settings.predictor_max_connections,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args)
    try:
        settings = TransformerSettings()
    except ValidationError as exc:
        print(f"invalid CHURN_TRANSFORMER_* settings:\n{exc}", file=sys.stderr)
        return 2
    predictor = predictor_client(args, settings)
    logging.getLogger("transformer").info(
        "predictor: %s, %s", predictor.address, predictor.transport
    )
    metrics = Metrics()
    model = ChurnTransformer(
        args.model_name, settings.bundle_uri, predictor, metrics, settings.max_batch_rows
    )
    try:
        tokens = TokenStore(settings.tokens_file)
        model.load()
    except (TokenFileError, BundleError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    install(
        kserve_model_server.app,
        model=model,
        settings=settings,
        tokens=tokens,
        metrics=metrics,
        audit=AuditTrail(sys.stdout.buffer),
    )
    server = ChurnModelServer(
        http_port=args.http_port,
        workers=1,
        max_asyncio_workers=args.max_asyncio_workers,  # threads for large batches
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        # Refused in parse_args when asked for (IGNORED_FLAGS).
        enable_grpc=False,
        enable_latency_logging=False,
        enable_docs_url=False,
        access_log_format=None,
        predictor_config=PredictorConfig(
            predictor_host=args.predictor_host,
            predictor_protocol=args.predictor_protocol,
            predictor_use_ssl=args.predictor_use_ssl,
            predictor_request_timeout_seconds=math.ceil(settings.predictor_timeout_seconds),
        ),
    )
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
