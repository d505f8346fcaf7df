"""Seeded synthetic customers in the Telco churn schema, at any size.

The churn signal follows what real telco data shows: month-to-month contracts, short tenure,
fiber internet, electronic checks and high charges raise churn; long contracts, support
add-ons and tenure lower it. `dirty_fraction` injects the quirks of real exports.

For monitoring scenarios: `drift` shifts the population (more month-to-month contracts, higher
charges) without changing how churn follows from it; `signal` scales the contract and fiber
effects on churn, so a model trained on `signal=0` data misses them and is genuinely worse on
normal customers; `labels` turns customers into the outcome file a CRM would deliver later.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.schema import CSV_COLUMNS, CUSTOMER_ID, TARGET

LABEL_DATE = "label_date"

_ADDONS = (
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)
_ADDON_PRICE = (5.0, 5.0, 5.0, 5.0, 10.0, 10.0)
_PAYMENT = (
    "Electronic check",
    "Mailed check",
    "Bank transfer (automatic)",
    "Credit card (automatic)",
)


def _yes_no(flags: np.ndarray) -> np.ndarray:
    return np.where(flags, "Yes", "No")


def generate(
    rows: int,
    seed: int = 42,
    dirty_fraction: float = 0.0,
    *,
    signal: float = 1.0,
    drift: float = 0.0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    senior = rng.random(rows) < 0.16
    partner = rng.random(rows) < 0.48
    dependents = rng.random(rows) < np.where(partner, 0.45, 0.12)
    # Many brand-new and many long-standing customers, as in real books of business.
    tenure = np.where(
        rng.random(rows) < 0.35,
        rng.integers(0, 12, rows),
        np.clip(rng.gamma(2.0, 18.0, rows), 0, 72).astype(int),
    )
    contract_draw = rng.random(rows) + tenure / 144 - 0.3 * drift
    contract = np.select(
        [contract_draw < 0.62, contract_draw < 0.85], ["Month-to-month", "One year"], "Two year"
    )
    phone = rng.random(rows) < 0.9
    multiple = np.where(phone, _yes_no(rng.random(rows) < 0.42), "No phone service")
    internet = rng.choice(["DSL", "Fiber optic", "No"], rows, p=[0.34, 0.44, 0.22])
    has_internet = internet != "No"
    addon_flags = {name: has_internet & (rng.random(rows) < 0.38) for name in _ADDONS}
    paperless = rng.random(rows) < 0.59
    payment = rng.choice(_PAYMENT, rows, p=[0.34, 0.23, 0.22, 0.21])

    monthly = (
        np.where(phone, 20.0, 0.0)
        + np.where(multiple == "Yes", 5.0, 0.0)
        + np.select([internet == "DSL", internet == "Fiber optic"], [25.0, 50.0], 0.0)
        + sum(np.where(addon_flags[a], p, 0.0) for a, p in zip(_ADDONS, _ADDON_PRICE, strict=True))
        + rng.normal(0, 2.5, rows)
    )
    charge_factor = 1 + 0.2 * drift
    monthly = np.round(np.clip(monthly * charge_factor, 18.25, 118.75 * charge_factor), 2)
    total = np.round(tenure * monthly * rng.uniform(0.97, 1.03, rows), 2)

    logit = (
        -1.2
        + signal
        * np.select([contract == "Month-to-month", contract == "Two year"], [1.3, -1.4], 0.0)
        - 0.035 * tenure
        + signal * np.where(internet == "Fiber optic", 0.8, 0.0)
        + np.where(payment == "Electronic check", 0.6, 0.0)
        + np.where(senior, 0.3, 0.0)
        + np.where(paperless, 0.3, 0.0)
        - np.where(addon_flags["TechSupport"], 0.5, 0.0)
        - np.where(addon_flags["OnlineSecurity"], 0.5, 0.0)
        + 0.012 * (monthly - 65)
    )
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))

    frame = pd.DataFrame(
        {
            CUSTOMER_ID: [f"{i:04d}-{code}" for i, code in enumerate(_id_codes(rng, rows))],
            "gender": rng.choice(["Female", "Male"], rows),
            "SeniorCitizen": senior.astype(int),
            "Partner": _yes_no(partner),
            "Dependents": _yes_no(dependents),
            "tenure": tenure,
            "PhoneService": _yes_no(phone),
            "MultipleLines": multiple,
            "InternetService": internet,
            **{
                a: np.where(has_internet, _yes_no(addon_flags[a]), "No internet service")
                for a in _ADDONS
            },
            "Contract": contract,
            "PaperlessBilling": _yes_no(paperless),
            "PaymentMethod": payment,
            "MonthlyCharges": monthly,
            # Real exports leave TotalCharges blank before the first bill.
            "TotalCharges": np.where(tenure == 0, " ", total.astype(str)),
            TARGET: _yes_no(churn),
        },
        columns=list(CSV_COLUMNS),
    )
    if dirty_fraction > 0:
        frame = _add_export_quirks(frame, rng, dirty_fraction)
    return frame


def labels(customers: pd.DataFrame, label_date: str) -> pd.DataFrame:
    """The delayed outcomes of these customers, as a CRM export: customerID, Churn, label_date."""
    return pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID],
            TARGET: customers[TARGET],
            LABEL_DATE: label_date,
        }
    )


def _id_codes(rng: np.random.Generator, rows: int) -> list[str]:
    letters = rng.integers(ord("A"), ord("Z") + 1, size=(rows, 5), dtype=np.uint8)
    return [bytes(row).decode() for row in letters]


def _add_export_quirks(
    frame: pd.DataFrame, rng: np.random.Generator, fraction: float
) -> pd.DataFrame:
    """Stray whitespace and case, duplicate rows, unseen categories and out-of-range numbers."""
    frame = frame.astype(dict.fromkeys(frame.columns, str))
    rows = len(frame)

    def pick(share: float) -> np.ndarray:
        return rng.choice(rows, size=max(1, int(rows * fraction * share)), replace=False)

    upper = pick(0.4)
    frame.loc[upper, "Contract"] = frame.loc[upper, "Contract"].str.upper()
    padded = pick(0.4)
    frame.loc[padded, "PaymentMethod"] = "  " + frame.loc[padded, "PaymentMethod"] + " "
    frame.loc[pick(0.1), "PaymentMethod"] = "Crypto"
    frame.loc[pick(0.1), "tenure"] = "-3"
    frame.loc[pick(0.05), "MonthlyCharges"] = "n/a"
    duplicates = frame.iloc[pick(0.1)]
    return pd.concat([frame, duplicates], ignore_index=True)
