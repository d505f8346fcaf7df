"""A feature spec fitted by hand from the schema, and v2 requests built from it."""

from __future__ import annotations

from typing import Any

import pytest

from model.schema import FEATURES, NumericFeature
from model.spec import FeatureSpec
from tests.specs import schema_spec
from transformer.codec import RequestDecoder


def make_spec() -> FeatureSpec:
    return schema_spec(impute_value=0.0, mean=1.0, scale=2.0)


def v2_inputs(rows: int = 2) -> list[dict[str, Any]]:
    """One valid tensor per feature: INT64/FP64 for numbers, BYTES for categories."""
    inputs = []
    for feature in FEATURES:
        if isinstance(feature, NumericFeature):
            datatype = "INT64" if feature.integer else "FP64"
            data: list[Any] = [int(feature.minimum) + (i % 2) for i in range(rows)]
        else:
            datatype = "BYTES"
            data = [feature.values[i % len(feature.values)] for i in range(rows)]
        inputs.append({"name": feature.name, "datatype": datatype, "shape": [rows], "data": data})
    return inputs


@pytest.fixture
def spec() -> FeatureSpec:
    return make_spec()


@pytest.fixture
def decoder(spec: FeatureSpec) -> RequestDecoder:
    return RequestDecoder(
        numeric=[n.name for n in spec.numeric],
        categorical=[c.name for c in spec.categorical],
        max_rows=1000,
    )
