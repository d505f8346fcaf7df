"""The model bundle: one versioned prefix per training run.

    <root>/<model_name>/<version>/
        model/model.joblib        the bare LogisticRegression; the sklearn runtime loads model/
        feature_spec.json         FeatureSpec, applied by the transformer
        validation_report.json    what training validation found in the data
        metadata.json             written last: the commit marker, with a sha256 of every file

A bundle without metadata.json is incomplete and is never served or registered. Versions are
new prefixes, never overwritten, so a reader sees a whole bundle or none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from model import storage
from model.errors import BundleError
from model.spec import FeatureSpec

FORMAT_VERSION = 1
MODEL_DIR = "model"
MODEL_FILE = "model.joblib"
MODEL_PATH = f"{MODEL_DIR}/{MODEL_FILE}"
# File names KServe's sklearn runtime loads from its model directory; it refuses more than one.
RUNTIME_MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")
SPEC_FILE = "feature_spec.json"
REPORT_FILE = "validation_report.json"
METADATA_FILE = "metadata.json"
# The MLflow model-version tag naming the bundle version: training writes it when it registers
# a bundle, monitoring finds the version to report against by it.
TAG_BUNDLE_VERSION = "bundle_version"


class BundleMetadata(BaseModel):
    format_version: int = FORMAT_VERSION
    model_name: str
    version: str
    created_at: str
    threshold: float
    threshold_rule: str
    metrics: dict[str, float]
    library_versions: dict[str, str]
    data_fingerprint: str
    training_rows: int
    # Training-time distributions that drift checks compare serving traffic with.
    reference: dict[str, Any]
    # Relative path -> sha256 of every other file in the bundle.
    files: dict[str, str]


def bundle_uri(root: str, model_name: str, version: str) -> str:
    return storage.join(root, model_name, version)


def storage_uri(bundle: str) -> str:
    """The model directory, which KServe's sklearn runtime loads: exactly one model file. The
    chart's storageUri is the whole bundle, and the runtime gets --model_dir=<mount>/model."""
    return storage.join(bundle, MODEL_DIR)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(uri: str, files: dict[str, bytes], metadata: BundleMetadata) -> None:
    """Write the files, then metadata.json with their checksums as the commit marker."""
    if storage.exists(storage.join(uri, METADATA_FILE)):
        raise BundleError(f"{uri} already holds a committed bundle; versions are never overwritten")
    for relative, data in files.items():
        storage.write_bytes(storage.join(uri, relative), data)
    committed = metadata.model_copy(update={"files": {p: sha256(d) for p, d in files.items()}})
    storage.write_bytes(
        storage.join(uri, METADATA_FILE), committed.model_dump_json(indent=2).encode()
    )


def read_metadata(uri: str) -> BundleMetadata:
    try:
        raw = storage.read_bytes(storage.join(uri, METADATA_FILE))
    except Exception as exc:
        raise BundleError(
            f"{uri} is not a committed bundle: cannot read {METADATA_FILE} ({exc})"
        ) from exc
    try:
        return BundleMetadata.model_validate_json(raw)
    except ValidationError as exc:
        raise BundleError(f"{uri}/{METADATA_FILE} is invalid: {exc}") from exc


def read_verified(uri: str, relative: str, metadata: BundleMetadata) -> bytes:
    expected = metadata.files.get(relative)
    if expected is None:
        raise BundleError(f"{uri}/{METADATA_FILE} lists no checksum for {relative}")
    try:
        data = storage.read_bytes(storage.join(uri, relative))
    except Exception as exc:
        raise BundleError(f"cannot read {uri}/{relative}: {exc}") from exc
    if sha256(data) != expected:
        raise BundleError(f"{uri}/{relative} does not match its checksum in {METADATA_FILE}")
    return data


def verify_bundle(uri: str) -> BundleMetadata:
    """Read back every file of a committed bundle and check it against metadata.json."""
    metadata = read_metadata(uri)
    for relative in metadata.files:
        read_verified(uri, relative, metadata)
    return metadata


@dataclass(frozen=True, slots=True)
class ServingBundle:
    uri: str
    version: str
    spec: FeatureSpec
    threshold: float
    metadata: BundleMetadata


def check_model_file(uri: str, metadata: BundleMetadata) -> None:
    """The guard against mismatched halves: the model directory the runtime loads holds exactly
    one model file, and it is the one this bundle's metadata.json names (same sha256)."""
    model_dir = storage_uri(uri)
    try:
        names = storage.list_names(model_dir)
    except Exception as exc:
        raise BundleError(f"cannot list the model directory {model_dir}: {exc}") from exc
    candidates = [n for n in names if n.endswith(RUNTIME_MODEL_EXTENSIONS)]
    if candidates != [MODEL_FILE]:
        raise BundleError(
            f"{model_dir} must hold exactly one model file, {MODEL_FILE}, for the runtime to "
            f"load; it holds {candidates or 'none'}"
        )
    expected = metadata.files.get(MODEL_PATH)
    if expected is None:
        raise BundleError(f"{uri}/{METADATA_FILE} names no sha256 for {MODEL_PATH}")
    actual = sha256(storage.read_bytes(storage.join(uri, MODEL_PATH)))
    if actual != expected:
        raise BundleError(
            f"{uri}/{MODEL_PATH} has sha256 {actual}, but {METADATA_FILE} of bundle "
            f"{metadata.version} names {expected}: the runtime would score with another model "
            "than the one this feature spec was fitted with"
        )


def load_serving_bundle(uri: str) -> ServingBundle:
    """What the transformer needs from a bundle, the feature spec and the decision threshold,
    after checking that the model file beside them is the bundle's own (check_model_file)."""
    metadata = read_metadata(uri)
    check_model_file(uri, metadata)
    try:
        spec = FeatureSpec.from_json(read_verified(uri, SPEC_FILE, metadata))
    except ValidationError as exc:
        raise BundleError(f"{uri}/{SPEC_FILE} is invalid: {exc}") from exc
    return ServingBundle(uri, metadata.version, spec, metadata.threshold, metadata)
