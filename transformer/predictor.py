"""The v2 REST client for the predictor: one pooled keep-alive connection set per process.

kserve's built-in client turns every predictor failure into a 500 and re-encodes tensors
through Python lists; this one sends the model matrix straight from numpy and maps failures
onto what the caller can act on: 503 when the predictor is down, times out or fails, 502 when
it answers with something that is not class probabilities.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import aiohttp
import numpy as np
import numpy.typing as npt

from transformer.codec import decode_predictor_response, encode_predictor_request
from transformer.errors import PredictorUnavailable
from transformer.settings import PredictorEncoding

logger = logging.getLogger(__name__)

# Readiness probes must answer quickly even when the predictor hangs.
READY_TIMEOUT_SECONDS = 2.0


class PredictorClient:
    """aiohttp rather than httpx: on a loopback hop to MLServer at batch 1 it measured
    ~0.7 ms median per call against ~6.5 ms for httpx.AsyncClient."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        timeout_seconds: float,
        encoding: PredictorEncoding = "json",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._infer_url = f"{self.base_url}/v2/models/{model_name}/infer"
        self._ready_urls = (
            f"{self.base_url}/v2/health/ready",
            f"{self.base_url}/v2/models/{model_name}/ready",
        )
        self._binary = encoding == "binary"
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60),
                # MLServer gzips large responses for clients that accept it: CPU on both
                # ends for a loopback or in-cluster hop.
                headers={"accept-encoding": "identity"},
            )
        return self._session

    async def predict_proba(
        self, matrix: npt.NDArray[np.float64], request_id: str
    ) -> npt.NDArray[np.float64]:
        """Positive-class probability per row of the FP64 [N, F] model matrix."""
        body, headers = encode_predictor_request(matrix, request_id, self._binary)
        headers["x-request-id"] = request_id
        try:
            async with self._client().post(
                self._infer_url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                content = await response.read()
        except TimeoutError:
            raise PredictorUnavailable(
                f"the predictor at {self.base_url} did not answer in time"
            ) from None
        except aiohttp.ClientError as exc:
            raise PredictorUnavailable(
                f"the predictor at {self.base_url} is unreachable ({type(exc).__name__})"
            ) from None
        if response.status != HTTPStatus.OK:
            # The predictor's own message can echo request data: keep it out of our logs.
            raise PredictorUnavailable(
                f"the predictor at {self.base_url} failed with HTTP {response.status}"
            )
        return decode_predictor_response(content, response.headers, matrix.shape[0])

    async def ready(self) -> bool:
        """The predictor server and the model on it both report ready."""
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT_SECONDS)
        try:
            for url in self._ready_urls:
                async with self._client().get(url, timeout=timeout) as response:
                    await response.read()
                    if response.status != HTTPStatus.OK:
                        return False
        except (TimeoutError, aiohttp.ClientError) as exc:
            logger.warning("predictor readiness check failed: %s", type(exc).__name__)
            return False
        return True

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
