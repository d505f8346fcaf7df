"""The same transformer, unchanged, in front of KServe's standard sklearn runtime.

kserve-sklearnserver answers `output-0` FP64 [N, 2] (MLServer answers `predict_proba`), and it
implements the v2 binary tensor extension, so both predictor encodings are exercised here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from devstack.demo import v2_request
from devstack.stack import Service, Stack, kserve_sklearnserver, transformer

from .conftest import Trained

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sklearnserver(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with kserve_sklearnserver(trained.bundle_dir, tmp_path_factory.mktemp("sklearnserver")) as s:
        yield s


def test_sklearnserver_itself_answers_output_0_probabilities(
    sklearnserver: Service, trained: Trained
) -> None:
    matrix = trained.matrix(trained.customers[:5])
    response = httpx.post(
        f"{sklearnserver.url}/v2/models/churn/infer",
        json={"inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(matrix.shape),
                          "data": matrix.ravel().tolist()}]},
    )  # fmt: skip
    output = response.json()["outputs"][0]
    assert (output["name"], output["datatype"], output["shape"]) == ("output-0", "FP64", [5, 2])


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_transformer_answers_match_in_process_through_sklearnserver(
    encoding: str,
    sklearnserver: Service,
    stack: Stack,
    trained: Trained,
    tmp_path: Path,
) -> None:
    customers = trained.customers[:300]
    with transformer(
        str(trained.bundle_dir),
        sklearnserver.url.removeprefix("http://"),
        tmp_path,
        stack.tokens_file,
        env={"CHURN_TRANSFORMER_PREDICTOR_ENCODING": encoding},
    ) as service:
        response = httpx.post(
            f"{service.url}/v2/models/churn/infer",
            json=v2_request(customers),
            headers=stack.auth_header(),
            timeout=60,
        )
    assert response.status_code == 200, response.text
    got = {o["name"]: o["data"] for o in response.json()["outputs"]}
    np.testing.assert_allclose(
        got["churn_probability"], trained.expected_probabilities(customers), rtol=0, atol=1e-9
    )
