"""One real etcd + kube-apiserver on loopback, with the upstream CRDs, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kube_apiserver import ApiServer, running_apiserver


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as server:
        yield server
