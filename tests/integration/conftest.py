"""Fixtures shared by integration test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """MLflow and S3 servers on loopback, with the data and models buckets, per test module."""
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
