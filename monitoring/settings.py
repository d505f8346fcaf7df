"""All monitoring configuration. Every field can be set by CHURN_MONITORING_<FIELD>."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.keys import read_secret


class MonitoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURN_MONITORING_", extra="forbid")

    customer_key_file: Path | None = Field(
        None, description="Mounted Secret file holding the HMAC key of customer_key."
    )
    customer_key: SecretStr | None = Field(
        None, description="The HMAC key itself, when no file is mounted."
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow server for --mlflow; falls back to MLFLOW_TRACKING_URI."
    )
    mlflow_experiment: str = "churn-monitoring"
    model_name: str = Field("churn", description="Bundle directory and MLflow registered model.")
    stable_arm: str = "stable"
    candidate_arm: str = "candidate"
    min_rows: int = Field(500, ge=10, description="Joined rows each arm needs for a verdict.")
    min_events: int = Field(
        50, ge=5, description="Churners and non-churners each arm needs for a verdict."
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Two-sided interval level.")
    bootstrap_resamples: int = Field(2000, ge=100, le=100_000)
    seed: int = 0
    calibration_bins: int = Field(10, ge=2, le=50)
    psi_alert: float = Field(0.2, gt=0, description="PSI at or above which a feature drifted.")
    drift_alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="False-discovery rate of the drift tests (Benjamini-Hochberg).",
    )

    def secret(self) -> bytes | None:
        if self.customer_key_file is not None:
            return read_secret(self.customer_key_file)
        if self.customer_key is not None:
            return self.customer_key.get_secret_value().encode()
        return None
