"""Bundle commit protocol on a local directory: metadata last, checksums verified, no overwrite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model import bundle
from model.bundle import BundleMetadata
from model.errors import BundleError
from tests.unit.model.test_spec import make_spec


def metadata(version: str = "v1") -> BundleMetadata:
    return BundleMetadata(
        model_name="churn",
        version=version,
        created_at="2026-01-01T00:00:00+00:00",
        threshold=0.4,
        threshold_rule="max_f1",
        metrics={"test_roc_auc": 0.8},
        library_versions={"scikit-learn": "1.5.2"},
        data_fingerprint="abc",
        training_rows=10,
        reference={},
        files={},
    )


def write(root: Path, version: str = "v1") -> str:
    uri = bundle.bundle_uri(str(root), "churn", version)
    files = {
        bundle.MODEL_PATH: b"model-bytes",
        bundle.SPEC_FILE: make_spec().to_json().encode(),
        bundle.REPORT_FILE: b"{}",
    }
    bundle.write_bundle(uri, files, metadata(version))
    return uri


def test_layout_has_one_model_file_and_metadata_with_checksums(tmp_path: Path) -> None:
    uri = write(tmp_path)
    assert sorted(p.name for p in Path(bundle.storage_uri(uri)).iterdir()) == ["model.joblib"]
    committed = bundle.verify_bundle(uri)
    assert set(committed.files) == {bundle.MODEL_PATH, bundle.SPEC_FILE, bundle.REPORT_FILE}
    assert committed.files[bundle.MODEL_PATH] == bundle.sha256(b"model-bytes")


def test_serving_bundle_loads_spec_threshold_and_version(tmp_path: Path) -> None:
    loaded = bundle.load_serving_bundle(write(tmp_path, "v7"))
    assert (loaded.version, loaded.threshold) == ("v7", 0.4)
    assert loaded.spec == make_spec()


def test_a_bundle_without_its_commit_marker_is_refused(tmp_path: Path) -> None:
    uri = write(tmp_path)
    (Path(uri) / bundle.METADATA_FILE).unlink()
    with pytest.raises(BundleError, match="not a committed bundle"):
        bundle.load_serving_bundle(uri)


def test_a_tampered_file_fails_its_checksum(tmp_path: Path) -> None:
    uri = write(tmp_path)
    (Path(uri) / bundle.SPEC_FILE).write_text(make_spec(unknown="zero").to_json())
    with pytest.raises(BundleError, match="checksum"):
        bundle.load_serving_bundle(uri)
    (Path(uri) / bundle.SPEC_FILE).write_text(make_spec().to_json())
    (Path(bundle.storage_uri(uri)) / bundle.MODEL_FILE).write_bytes(b"other")
    with pytest.raises(BundleError, match="checksum"):
        bundle.verify_bundle(uri)


def test_serving_refuses_a_model_file_that_is_not_the_bundles_own(tmp_path: Path) -> None:
    uri = write(tmp_path)
    other = bundle.sha256(b"another model")
    (Path(bundle.storage_uri(uri)) / bundle.MODEL_FILE).write_bytes(b"another model")
    with pytest.raises(BundleError) as refused:
        bundle.load_serving_bundle(uri)
    message = str(refused.value)
    assert f"has sha256 {other}" in message
    assert f"names {bundle.sha256(b'model-bytes')}" in message
    assert "another model than the one this feature spec was fitted with" in message


@pytest.mark.parametrize(
    ("extra", "found"),
    [
        ("model.pkl", "['model.joblib', 'model.pkl']"),
        ("old.pickle", "['model.joblib', 'old.pickle']"),
    ],
)
def test_serving_refuses_a_model_directory_the_runtime_would_refuse(
    tmp_path: Path, extra: str, found: str
) -> None:
    uri = write(tmp_path)
    (Path(bundle.storage_uri(uri)) / extra).write_bytes(b"x")
    with pytest.raises(
        BundleError, match=f"exactly one model file, model.joblib.*holds {re.escape(found)}"
    ):
        bundle.load_serving_bundle(uri)


def test_serving_refuses_a_bundle_without_its_model_file(tmp_path: Path) -> None:
    uri = write(tmp_path)
    (Path(bundle.storage_uri(uri)) / bundle.MODEL_FILE).unlink()
    with pytest.raises(BundleError, match=r"exactly one model file, model.joblib.*holds none"):
        bundle.load_serving_bundle(uri)


def test_committed_versions_are_never_overwritten(tmp_path: Path) -> None:
    write(tmp_path)
    with pytest.raises(BundleError, match="never overwritten"):
        write(tmp_path)


def test_bundle_files_are_readable_by_other_users(tmp_path: Path) -> None:
    uri = write(tmp_path)
    for path in Path(uri).rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o044 == 0o044, path
