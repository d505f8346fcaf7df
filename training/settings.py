"""All training configuration. Every field can be set by flag or by CHURN_TRAINING_<FIELD>."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.spec import UnknownPolicy


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_TRAINING_", extra="forbid")

    data: str | None = Field(None, description="Customer CSV: a local path or s3://bucket/key.")
    output: str = Field(
        "bundles", description="Bundle root: a local directory or s3://bucket/prefix."
    )
    model_name: str = Field(
        "churn", description="Bundle directory name and MLflow registered model."
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow server. Falls back to MLFLOW_TRACKING_URI, then to a sqlite file "
        "next to a local output (or in the working directory).",
    )
    experiment: str = "churn"
    seed: int = 42
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    cv_folds: int = Field(5, ge=2, le=20)
    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    threshold_rule: Literal["max_f1", "min_cost"] = "max_f1"
    cost_ratio: float = Field(
        5.0, gt=0, description="min_cost rule: cost of a missed churner / cost of a false alarm."
    )
    unknown_category_policy: UnknownPolicy = Field(
        "reject", description="What serving does with a category training never saw."
    )
    max_dropped_fraction: float = Field(0.10, ge=0, le=1, description="Fail above this share.")
    max_missing_fraction: float = Field(
        0.05, ge=0, le=1, description="Fail when any column has a larger share of missing values."
    )
    min_rows: int = Field(200, ge=10, description="Fail when fewer clean rows remain.")
    min_class_rows: int = Field(20, ge=2, description="Fail when either class has fewer rows.")
