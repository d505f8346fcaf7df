"""MLflow: run logging, model registration, and the candidate / champion aliases.

Registration happens only after the bundle is written and read back. Each new version gets
the alias `candidate`; `promote` moves `champion` (what deploys serve) and remembers the
previous champion on the promoted version, so `rollback` can restore it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from model import storage
from model.bundle import TAG_BUNDLE_VERSION
from training.settings import TrainingSettings

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
CHAMPION = "champion"
TAG_BUNDLE_URI = "bundle_uri"
TAG_STORAGE_URI = "storage_uri"
TAG_PREVIOUS_CHAMPION = "previous_champion"


class RegistryError(RuntimeError):
    pass


def tracking_uri(settings: TrainingSettings) -> str:
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    home = Path(settings.output) if not storage.is_s3(settings.output) else Path.cwd()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'mlflow.db').resolve()}"


def _client(settings: TrainingSettings) -> MlflowClient:
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: MlflowClient, settings: TrainingSettings) -> str:
    existing = client.get_experiment_by_name(settings.experiment)
    if existing is not None:
        return str(existing.experiment_id)
    # Without a server, MLflow would put artifacts in ./mlruns of whatever the working directory is.
    location = None
    if tracking_uri(settings).startswith("sqlite:///") and not storage.is_s3(settings.output):
        location = (Path(settings.output) / "mlartifacts").resolve().as_uri()
    return str(client.create_experiment(settings.experiment, artifact_location=location))


@dataclass(frozen=True)
class Registered:
    run_id: str
    model_version: str


def log_and_register(
    settings: TrainingSettings,
    *,
    estimator: Any,
    requirements: list[str],
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: dict[str, bytes],
    bundle_uri: str,
    storage_uri: str,
    bundle_version: str,
) -> Registered:
    """Log the run and register a version tagged with the exact URI KServe will load.

    On any failure the half-made version is deleted and the run marked FAILED, so the
    registry and its aliases are as they were.
    """
    client = _client(settings)
    experiment_id = _experiment_id(client, settings)
    log.info(
        "logging run to MLflow at %s (experiment %s)", tracking_uri(settings), settings.experiment
    )
    version = None
    with mlflow.start_run(experiment_id=experiment_id, run_name=bundle_version) as run:
        try:
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            for name, data in artifacts.items():
                mlflow.log_text(data.decode(), name)
            mlflow.set_tags({TAG_BUNDLE_URI: bundle_uri, TAG_STORAGE_URI: storage_uri})
            info = mlflow.sklearn.log_model(
                estimator,
                name="model",
                serialization_format="pickle",
                # Given, not inferred: inference imports and traces the model, ~10 s per run.
                pip_requirements=requirements,
            )
            tags = {
                TAG_BUNDLE_URI: bundle_uri,
                TAG_STORAGE_URI: storage_uri,
                TAG_BUNDLE_VERSION: bundle_version,
            }
            version = mlflow.register_model(info.model_uri, settings.model_name, tags=tags)
            client.set_registered_model_alias(settings.model_name, CANDIDATE, version.version)
        except BaseException:
            if version is not None:
                _delete_quietly(client, settings.model_name, version.version)
            raise
    log.info("registered %s version %s as %r", settings.model_name, version.version, CANDIDATE)
    return Registered(run.info.run_id, str(version.version))


def _delete_quietly(client: MlflowClient, name: str, version: str) -> None:
    try:
        client.delete_model_version(name, version)
    except MlflowException as exc:
        log.error("could not remove half-registered version %s of %s: %s", version, name, exc)


def _describe(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    mv = client.get_model_version(name, version)
    return {
        "model": name,
        "version": str(mv.version),
        "bundle_uri": mv.tags.get(TAG_BUNDLE_URI, ""),
        "storage_uri": mv.tags.get(TAG_STORAGE_URI, ""),
        "bundle_version": mv.tags.get(TAG_BUNDLE_VERSION, ""),
    }


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def promote(settings: TrainingSettings, version: str | None) -> dict[str, str]:
    """Point `champion` at a version (default: the current candidate)."""
    client = _client(settings)
    name = settings.model_name
    target = version or _alias_version(client, name, CANDIDATE)
    if target is None:
        raise RegistryError(f"model {name!r} has no {CANDIDATE!r} alias; pass --version")
    client.get_model_version(name, target)  # fails clearly if it does not exist
    previous = _alias_version(client, name, CHAMPION)
    if previous == target:
        raise RegistryError(f"version {target} of {name!r} is already {CHAMPION!r}")
    if previous is not None:
        client.set_model_version_tag(name, target, TAG_PREVIOUS_CHAMPION, previous)
    client.set_registered_model_alias(name, CHAMPION, target)
    return {**_describe(client, name, target), "previous_champion": previous or ""}


def rollback(settings: TrainingSettings) -> dict[str, str]:
    """Point `champion` back at the version it replaced."""
    client = _client(settings)
    name = settings.model_name
    current = _alias_version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"model {name!r} has no {CHAMPION!r} alias to roll back")
    previous = client.get_model_version(name, current).tags.get(TAG_PREVIOUS_CHAMPION)
    if not previous:
        raise RegistryError(
            f"{CHAMPION!r} version {current} of {name!r} replaced no earlier version"
        )
    client.set_registered_model_alias(name, CHAMPION, previous)
    return {**_describe(client, name, previous), "rolled_back_from": current}


def status(settings: TrainingSettings) -> dict[str, Any]:
    client = _client(settings)
    name = settings.model_name
    aliases = {}
    for alias in (CHAMPION, CANDIDATE):
        version = _alias_version(client, name, alias)
        aliases[alias] = _describe(client, name, version) if version else None
    return {"model": name, "aliases": aliases}
