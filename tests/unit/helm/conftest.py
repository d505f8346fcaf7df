"""Fixtures that render the churn-predictor chart with the real helm binary."""

from __future__ import annotations

from functools import partial

import pytest
from helm_chart import Render, find_tool, render_chart


@pytest.fixture(scope="session")
def helm() -> str:
    return find_tool("helm")


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    return partial(render_chart, helm)
