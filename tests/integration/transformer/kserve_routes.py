"""Print, as JSON, every route kserve's FastAPI app has once its REST server has built it for
the transformer's model: ``python -m tests.integration.transformer.kserve_routes BUNDLE_DIR``.

It runs in its own process because building the routes mutates kserve's module-level app.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_server import app
from kserve.protocol.rest.server import RESTServer
from prometheus_client import CollectorRegistry

from devstack.stack import MODEL_NAME
from transformer.metrics import Metrics
from transformer.model import ChurnTransformer
from transformer.predictor import PredictorClient


def walk(routes: Iterable[Any], prefix: str = "") -> Iterator[dict[str, Any]]:
    """Every (path, methods), descending into included routers (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from walk(included.routes, prefix + route.include_context.prefix)
        else:
            yield {"path": prefix + route.path, "methods": sorted(route.methods)}


def main(bundle_dir: str) -> None:
    model = ChurnTransformer(
        MODEL_NAME,
        bundle_dir,
        PredictorClient("http://127.0.0.1:9", MODEL_NAME, 1.0),
        Metrics(CollectorRegistry()),
        max_batch_rows=10,
    )
    model.load()
    server = ModelServer(workers=1, enable_grpc=False)
    server.register_model(model)
    # What RESTServer.start does before serving: middleware, routes, exception handlers.
    RESTServer(
        FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 0
    ).create_application()
    json.dump(list(walk(app.routes)), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
