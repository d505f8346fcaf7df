"""The scikit-learn preprocessing that training fits, and its export to the JSON FeatureSpec.

The ColumnTransformer's output layout is the spec's layout: one standardized column per
numeric feature (imputed first where the schema says so), then one-hot blocks over the
declared vocabularies. Serving applies the exported spec with numpy; a parity test holds
the two to identical matrices.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from model.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES, NumericFeature
from model.spec import CategoricalSpec, FeatureSpec, NumericSpec, UnknownPolicy

_CATEGORICAL = "categorical"


def _numeric_steps(feature: NumericFeature) -> Pipeline:
    steps: list[tuple[str, object]] = []
    if feature.missing == "impute":
        imputer = (
            SimpleImputer(strategy="median")
            if feature.fill_value is None
            else SimpleImputer(strategy="constant", fill_value=feature.fill_value)
        )
        steps.append(("impute", imputer))
    steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def build_preprocessor() -> ColumnTransformer:
    transformers: list[tuple[str, object, list[str]]] = [
        (f.name, _numeric_steps(f), [f.name]) for f in NUMERIC_FEATURES
    ]
    transformers.append(
        (
            _CATEGORICAL,
            OneHotEncoder(
                categories=[list(f.values) for f in CATEGORICAL_FEATURES],
                handle_unknown="ignore",
                sparse_output=False,
            ),
            [f.name for f in CATEGORICAL_FEATURES],
        )
    )
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def export_spec(fitted: ColumnTransformer, unknown: UnknownPolicy) -> FeatureSpec:
    numeric = []
    for feature in NUMERIC_FEATURES:
        steps: Pipeline = fitted.named_transformers_[feature.name]
        scaler: StandardScaler = steps.named_steps["scale"]
        impute_value = (
            float(steps.named_steps["impute"].statistics_[0])
            if feature.missing == "impute"
            else None
        )
        numeric.append(
            NumericSpec.fitted(
                feature,
                impute_value=impute_value,
                mean=float(scaler.mean_[0]),
                scale=float(scaler.scale_[0]),
            )
        )
    encoder: OneHotEncoder = fitted.named_transformers_[_CATEGORICAL]
    categorical = [
        CategoricalSpec(
            name=feature.name, vocabulary=tuple(str(v) for v in vocabulary), unknown=unknown
        )
        for feature, vocabulary in zip(CATEGORICAL_FEATURES, encoder.categories_, strict=True)
    ]
    return FeatureSpec.build(tuple(numeric), tuple(categorical))
