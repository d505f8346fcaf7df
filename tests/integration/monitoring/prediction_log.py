"""A prediction log as the transformer will write it, made by scoring customers with a bundle."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd

from model import bundle, storage
from model.keys import customer_keys
from model.schema import CUSTOMER_ID, FEATURE_NAMES


def score(
    bundle_uri: str,
    customers: pd.DataFrame,
    *,
    arm: str,
    secret: bytes,
    start: str,
) -> pd.DataFrame:
    """One log row per customer: keyed by HMAC, scored a minute apart from `start`."""
    serving = bundle.load_serving_bundle(bundle_uri)
    model_bytes = bundle.read_verified(bundle_uri, bundle.MODEL_PATH, serving.metadata)
    classifier = joblib.load(io.BytesIO(model_bytes))
    columns = {name: customers[name].to_numpy() for name in FEATURE_NAMES}
    probability = classifier.predict_proba(serving.spec.transform(columns).matrix)[:, 1]
    rows = len(customers)
    return pd.DataFrame(
        {
            "scored_at": pd.date_range(start, periods=rows, freq="min", tz="UTC"),
            "request_id": [f"{arm}-{i}" for i in range(rows)],
            "arm": arm,
            "bundle_version": serving.version,
            "customer_key": customer_keys(customers[CUSTOMER_ID], secret),
            "churn_probability": probability,
            "churn": probability >= serving.threshold,
            **{name: customers[name].to_numpy() for name in FEATURE_NAMES},
        }
    )


def write_parquet(frame: pd.DataFrame, uri: str) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    storage.write_bytes(uri, buffer.getvalue())


def split_arms(customers: pd.DataFrame, candidate_share: float, seed: int) -> np.ndarray:
    """Which customers the weighted route sends to the candidate."""
    return np.random.default_rng(seed).random(len(customers)) < candidate_share
