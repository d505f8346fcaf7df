"""The public Telco customer-churn schema, declared once.

Training validates CSV exports against it and serving validates v2 requests against the
feature spec fitted from it. Column lists are derived from here, never repeated elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CUSTOMER_ID = "customerID"
TARGET = "Churn"
TARGET_VALUES = ("No", "Yes")  # index = label

# Longest text, in characters, a request may send in one cell; training holds numbers as text
# to the same limit. Telco data needs far less: categories have at most 25 characters ("Bank
# transfer (automatic)"), customer IDs 10 ("7590-VHVEG"), numbers as text 7 ("8684.80"). The
# headroom allows padding, full float precision ("-1.2345678901234567e-308" has 24) and other ID
# schemes (a UUID has 36), while keeping the memory a request can claim proportional to its size.
MAX_CATEGORY_CHARS = 64
MAX_NUMBER_TEXT_CHARS = 32
MAX_CUSTOMER_ID_CHARS = 64

MissingPolicy = Literal["reject", "impute"]


class NumericFeature(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric"] = "numeric"
    name: str
    minimum: float
    maximum: float
    integer: bool = False
    missing: MissingPolicy = "reject"
    # Constant used by the "impute" policy; None means the training median.
    fill_value: float | None = None
    description: str = ""


class CategoricalFeature(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["categorical"] = "categorical"
    name: str
    # Canonical spellings. Matching ignores case and surrounding/repeated whitespace.
    values: tuple[str, ...]
    description: str = ""


Feature = Annotated[NumericFeature | CategoricalFeature, Field(discriminator="kind")]

_YES_NO = ("No", "Yes")
_INTERNET_ADDON = ("No", "Yes", "No internet service")


def _addon(name: str) -> CategoricalFeature:
    return CategoricalFeature(name=name, values=_INTERNET_ADDON, description=f"{name} add-on")


FEATURES: tuple[NumericFeature | CategoricalFeature, ...] = (
    CategoricalFeature(name="gender", values=("Female", "Male")),
    NumericFeature(name="SeniorCitizen", minimum=0, maximum=1, integer=True),
    CategoricalFeature(name="Partner", values=_YES_NO),
    CategoricalFeature(name="Dependents", values=_YES_NO),
    NumericFeature(
        name="tenure", minimum=0, maximum=120, integer=True, description="months as a customer"
    ),
    CategoricalFeature(name="PhoneService", values=_YES_NO),
    CategoricalFeature(name="MultipleLines", values=("No", "Yes", "No phone service")),
    CategoricalFeature(name="InternetService", values=("DSL", "Fiber optic", "No")),
    _addon("OnlineSecurity"),
    _addon("OnlineBackup"),
    _addon("DeviceProtection"),
    _addon("TechSupport"),
    _addon("StreamingTV"),
    _addon("StreamingMovies"),
    CategoricalFeature(name="Contract", values=("Month-to-month", "One year", "Two year")),
    CategoricalFeature(name="PaperlessBilling", values=_YES_NO),
    CategoricalFeature(
        name="PaymentMethod",
        values=(
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        ),
    ),
    NumericFeature(name="MonthlyCharges", minimum=0, maximum=1000),
    # Blank in real exports for customers in their first month: nothing billed yet.
    NumericFeature(
        name="TotalCharges", minimum=0, maximum=200_000, missing="impute", fill_value=0.0
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: tuple[NumericFeature, ...] = tuple(
    f for f in FEATURES if isinstance(f, NumericFeature)
)
CATEGORICAL_FEATURES: tuple[CategoricalFeature, ...] = tuple(
    f for f in FEATURES if isinstance(f, CategoricalFeature)
)
# Column order of a Telco export.
CSV_COLUMNS: tuple[str, ...] = (CUSTOMER_ID, *FEATURE_NAMES, TARGET)
