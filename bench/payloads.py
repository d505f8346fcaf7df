"""The customer rows every system answers, the reference model, and each system's wire format.

All systems get the same rows. Each wire encodes a batch the way that system's clients send it
and reads class-1 probabilities back from its answer, so the harness can check every
request body against the in-process reference before any load is applied.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import joblib
import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from devstack.demo import v2_request
from model.bundle import MODEL_PATH, load_serving_bundle
from model.schema import CUSTOMER_ID, FEATURE_NAMES, FEATURES, TARGET, NumericFeature
from model.spec import FeatureSpec
from training.features import build_preprocessor, export_spec
from training.settings import TrainingSettings
from training.validation import read_csv, validate
from transformer.codec import decode_predictor_response, encode_predictor_request

from .loadgen import HttpRequest

Probabilities = npt.NDArray[np.float64]
Headers = Mapping[str, str]
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Batch:
    """One request's rows in every form a system needs."""

    first_row: int
    frame: pd.DataFrame  # customerID + features, numeric as float (NaN = blank TotalCharges)
    records: list[dict[str, Any]]  # as a client sends them: ints for whole numbers, None blank
    columns: dict[str, npt.NDArray[Any]]  # FeatureSpec.transform input
    matrix: Probabilities  # the FP64 model matrix the predictor receives

    @property
    def rows(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class Reference:
    """The bundle's spec and classifier, and the equivalent full scikit-learn Pipeline."""

    spec: FeatureSpec
    version: str
    classifier: Any  # the bundle's fitted LogisticRegression
    pipeline: Pipeline  # refitted preprocessing + that same classifier (the peers' model)

    def probabilities(self, batch: Batch) -> Probabilities:
        return np.asarray(self.classifier.predict_proba(batch.matrix)[:, 1])


def _client_record(row: Mapping[Hashable, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {CUSTOMER_ID: row[CUSTOMER_ID]}
    for feature in FEATURES:
        value = row[feature.name]
        if isinstance(feature, NumericFeature):
            value = None if np.isnan(value) else int(value) if feature.integer else float(value)
        record[feature.name] = value
    return record


def load_customers(data_csv: Path, count: int, seed: int) -> pd.DataFrame:
    """``count`` clean rows drawn (seeded) from the training CSV, as validation reads them."""
    raw = read_csv(data_csv.read_bytes())
    clean, _ = validate(raw, TrainingSettings())
    # Generated without export quirks, every row is clean, so raw and clean rows line up.
    if len(clean) != len(raw):
        raise ValueError(f"{data_csv}: validation dropped rows; generate it without dirt")
    if len(clean) < count:
        raise ValueError(f"{data_csv} has {len(clean)} rows; the benchmark needs {count}")
    clean[CUSTOMER_ID] = raw[CUSTOMER_ID].to_numpy()
    picked = clean.sample(n=count, random_state=seed).reset_index(drop=True)
    return picked[[CUSTOMER_ID, *FEATURE_NAMES]]


def make_batches(customers: pd.DataFrame, size: int, count: int, spec: FeatureSpec) -> list[Batch]:
    """``count`` consecutive, non-overlapping batches of ``size`` rows."""
    if size * count > len(customers):
        raise ValueError(f"{count} batches of {size} rows need more than {len(customers)} rows")
    batches = []
    for first in range(0, size * count, size):
        frame = customers.iloc[first : first + size].reset_index(drop=True)
        columns = {
            f.name: (
                frame[f.name].to_numpy(dtype=np.float64)
                if isinstance(f, NumericFeature)
                else frame[f.name].to_numpy(dtype=object)
            )
            for f in FEATURES
        }
        records = [_client_record(row) for row in frame.to_dict("records")]
        matrix = spec.transform(columns).matrix
        batches.append(Batch(first, frame, records, columns, matrix))
    return batches


def build_reference(bundle_dir: Path, data_csv: Path) -> Reference:
    """The bundle's model, plus a full Pipeline with the same fitted numbers for the peers.

    Training fits its preprocessing on the training split inside the CV search and the bundle
    keeps only the classifier and the exported spec. The preprocessing is refitted here on the
    same split (same seed and test fraction), and must export to exactly the bundle's spec:
    otherwise the peers would serve a different model, and this raises.
    """
    bundle = load_serving_bundle(str(bundle_dir))
    settings = TrainingSettings()
    clean, _ = validate(read_csv(data_csv.read_bytes()), settings)
    features, labels = clean[list(FEATURE_NAMES)], clean[TARGET].to_numpy()
    train_features, _, _, _ = train_test_split(
        features,
        labels,
        test_size=settings.test_fraction,
        stratify=labels,
        random_state=settings.seed,
    )
    preprocessor = build_preprocessor().fit(train_features)
    if export_spec(preprocessor, settings.unknown_category_policy) != bundle.spec:
        raise RuntimeError(
            "the refitted preprocessing does not reproduce the bundle's feature spec: "
            "training's split or defaults changed; update bench/payloads.py"
        )
    classifier = joblib.load(bundle_dir / MODEL_PATH)
    pipeline = Pipeline([("preprocess", preprocessor), ("classifier", classifier)])
    return Reference(bundle.spec, bundle.version, classifier, pipeline)


class Wire(Protocol):
    """How one system is called: request for a batch, probabilities from its answer."""

    def request(self, batch: Batch) -> HttpRequest: ...

    def probabilities(self, body: bytes, headers: Headers, rows: int) -> Probabilities: ...


@dataclass(frozen=True)
class TransformerWire:
    """The project's public API: one v2 tensor per feature, bearer token."""

    model_name: str
    token: str

    def request(self, batch: Batch) -> HttpRequest:
        return HttpRequest(
            f"/v2/models/{self.model_name}/infer",
            orjson.dumps(v2_request(batch.records)),
            {**JSON, "authorization": f"Bearer {self.token}"},
        )

    def probabilities(self, body: bytes, headers: Headers, rows: int) -> Probabilities:
        outputs = {o["name"]: o["data"] for o in orjson.loads(body)["outputs"]}
        return np.asarray(outputs["churn_probability"], dtype=np.float64)


@dataclass(frozen=True)
class PredictorWire:
    """The model matrix as the transformer sends it: FP64 [N, F] as v2 JSON."""

    model_name: str

    def request(self, batch: Batch) -> HttpRequest:
        body, headers = encode_predictor_request(batch.matrix, "bench", binary=False)
        return HttpRequest(f"/v2/models/{self.model_name}/infer", body, headers)

    def probabilities(self, body: bytes, headers: Headers, rows: int) -> Probabilities:
        return decode_predictor_response(body, headers, rows)


@dataclass(frozen=True)
class MlflowWire:
    """`mlflow models serve`: raw rows as a pandas split-oriented frame."""

    def request(self, batch: Batch) -> HttpRequest:
        columns = [CUSTOMER_ID, *FEATURE_NAMES]
        data = [[record[name] for name in columns] for record in batch.records]
        body = orjson.dumps({"dataframe_split": {"columns": columns, "data": data}})
        return HttpRequest("/invocations", body, JSON)

    def probabilities(self, body: bytes, headers: Headers, rows: int) -> Probabilities:
        predictions = np.asarray(orjson.loads(body)["predictions"], dtype=np.float64)
        return predictions.reshape(rows, 2)[:, 1]


@dataclass(frozen=True)
class PandasV2Wire:
    """MLServer with the full Pipeline: raw rows as a v2 request with the `pd` content type."""

    model_name: str

    def request(self, batch: Batch) -> HttpRequest:
        document = v2_request(batch.records)
        document["parameters"] = {"content_type": "pd"}
        for tensor in document["inputs"]:
            if tensor["datatype"] == "BYTES":
                tensor["parameters"] = {"content_type": "str"}
        return HttpRequest(f"/v2/models/{self.model_name}/infer", orjson.dumps(document), JSON)

    def probabilities(self, body: bytes, headers: Headers, rows: int) -> Probabilities:
        return decode_predictor_response(body, headers, rows)
