"""`demo`: train, serve, call, stop. `up`: train, serve, print a curl command, wait for Ctrl-C."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import StackError
from devstack.stack import Stack, serving_stack, train_bundle
from model.schema import CUSTOMER_ID, FEATURES

# Three customers as a Telco export would describe them (TotalCharges is text there, and
# blank for a customer in the first month).
SAMPLE_CUSTOMERS: list[dict[str, Any]] = [
    {
        CUSTOMER_ID: "7590-VHVEG", "gender": "Female", "SeniorCitizen": 0, "Partner": "Yes",
        "Dependents": "No", "tenure": 1, "PhoneService": "No",
        "MultipleLines": "No phone service", "InternetService": "DSL",
        "OnlineSecurity": "No", "OnlineBackup": "Yes", "DeviceProtection": "No",
        "TechSupport": "No", "StreamingTV": "No", "StreamingMovies": "No",
        "Contract": "Month-to-month", "PaperlessBilling": "Yes",
        "PaymentMethod": "Electronic check", "MonthlyCharges": 29.85, "TotalCharges": "29.85",
    },
    {
        CUSTOMER_ID: "5575-GNVDE", "gender": "Male", "SeniorCitizen": 0, "Partner": "No",
        "Dependents": "No", "tenure": 34, "PhoneService": "Yes", "MultipleLines": "No",
        "InternetService": "DSL", "OnlineSecurity": "Yes", "OnlineBackup": "No",
        "DeviceProtection": "Yes", "TechSupport": "No", "StreamingTV": "No",
        "StreamingMovies": "No", "Contract": "One year", "PaperlessBilling": "No",
        "PaymentMethod": "Mailed check", "MonthlyCharges": 56.95, "TotalCharges": "1889.5",
    },
    {
        CUSTOMER_ID: "9237-HQITU", "gender": "Female", "SeniorCitizen": 1, "Partner": "No",
        "Dependents": "No", "tenure": 0, "PhoneService": "Yes", "MultipleLines": "No",
        "InternetService": "Fiber optic", "OnlineSecurity": "No", "OnlineBackup": "No",
        "DeviceProtection": "No", "TechSupport": "No", "StreamingTV": "Yes",
        "StreamingMovies": "Yes", "Contract": "Month-to-month", "PaperlessBilling": "Yes",
        "PaymentMethod": "Electronic check", "MonthlyCharges": 95.7, "TotalCharges": " ",
    },
]  # fmt: skip


def v2_request(customers: list[dict[str, Any]], request_id: str | None = None) -> dict[str, Any]:
    """Rows -> one v2 tensor per column: BYTES for text, INT64/FP64 for numbers."""

    def datatype(values: list[Any]) -> str:
        if all(isinstance(v, str) for v in values):
            return "BYTES"
        return "INT64" if all(isinstance(v, int) for v in values) else "FP64"

    names = [CUSTOMER_ID, *(f.name for f in FEATURES)]
    inputs = []
    for name in names:
        values = [row[name] for row in customers]
        inputs.append(
            {"name": name, "datatype": datatype(values), "shape": [len(values)], "data": values}
        )
    request: dict[str, Any] = {"inputs": inputs}
    if request_id:
        request["id"] = request_id
    return request


def say(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


def _print_predictions(response: dict[str, Any]) -> None:
    outputs = {o["name"]: o["data"] for o in response["outputs"]}
    print(f"\n  model version {response['parameters']['model_version']}"
          f" (threshold {response['parameters']['threshold']:.3f})")  # fmt: skip
    print(f"  {'customerID':<12} {'churn_probability':>17}  churn")
    for customer, probability, churn in zip(
        outputs[CUSTOMER_ID], outputs["churn_probability"], outputs["churn"], strict=True
    ):
        print(f"  {customer:<12} {probability:>17.4f}  {'yes' if churn else 'no'}")
    print()


def _show_requests(stack: Stack) -> None:
    with httpx.Client(timeout=30) as client:
        say(f"POST {stack.infer_url} with {len(SAMPLE_CUSTOMERS)} customers")
        answer = client.post(
            stack.infer_url,
            json=v2_request(SAMPLE_CUSTOMERS, "demo-1"),
            headers=stack.auth_header(),
        )
        answer.raise_for_status()
        _print_predictions(answer.json())

        say("the same request without a token:")
        refused = client.post(stack.infer_url, json=v2_request(SAMPLE_CUSTOMERS))
        print(f"  HTTP {refused.status_code}, WWW-Authenticate: "
              f"{refused.headers.get('www-authenticate')}\n  {refused.text}\n")  # fmt: skip

        bad = [dict(row) for row in SAMPLE_CUSTOMERS[:2]]
        bad[0]["Contract"] = "Montly"
        bad[1]["tenure"] = -3
        say("an invalid request (a misspelt Contract in row 0, a negative tenure in row 1):")
        invalid = client.post(stack.infer_url, json=v2_request(bad), headers=stack.auth_header())
        print(f"  HTTP {invalid.status_code}")
        print("  " + json.dumps(invalid.json(), indent=2).replace("\n", "\n  ") + "\n")

        metrics = client.get(f"{stack.transformer.url}/metrics").text
        say("request counters on /metrics:")
        for line in metrics.splitlines():
            if line.startswith("churn_transformer_requests_total"):
                print(f"  {line}")
        print()


def curl_command(stack: Stack, request_file: Path) -> str:
    token = stack.tokens[next(iter(stack.tokens))]
    return (
        f"curl -s {stack.infer_url} -H 'Authorization: Bearer {token}' "
        f"-H 'Content-Type: application/json' -d @{shlex.quote(str(request_file))}"
    )


@contextmanager
def _work_dir(given: Path | None, keep: bool) -> Iterator[Path]:
    work_dir = given or Path(tempfile.mkdtemp(prefix="churn-devstack-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield work_dir
    finally:
        if given is None and not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            say(f"work directory kept: {work_dir}")


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every child is stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run(
    *,
    stay_up: bool,
    bundle: Path | None,
    work_dir: Path | None,
    port: int,
    rows: int,
    keep: bool,
) -> int:
    _stop_on_sigterm()
    started = time.monotonic()
    try:
        with _work_dir(work_dir, keep) as work:
            bundle_dir = bundle or train_bundle(work, rows=rows, progress=say)
            with serving_stack(bundle_dir, work, transformer_port=port, progress=say) as stack:
                say(f"stack ready in {time.monotonic() - started:.0f} s "
                    f"(logs: {work / 'logs'})")  # fmt: skip
                _show_requests(stack)
                if stay_up:
                    _wait_for_interrupt(stack, work)
                else:
                    say("demo done; stopping the stack")
    except KeyboardInterrupt:
        say("interrupted; stack stopped")
        return 130
    say("stack stopped")
    return 0


def _wait_for_interrupt(stack: Stack, work: Path) -> None:
    request_file = work / "request.json"
    request_file.write_text(json.dumps(v2_request(SAMPLE_CUSTOMERS[:1], "curl-1"), indent=2))
    print(
        f"\nThe stack is up.\n"
        f"  transformer: {stack.transformer.url}  (v2 REST; /v2/health/ready, /metrics)\n"
        f"  predictor:   {stack.predictor.url}  (kserve-sklearnserver, loopback only)\n"
        f"  token file:  {stack.tokens_file}\n\n"
        f"Try:\n  {curl_command(stack, request_file)}\n\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )
    while True:
        for service in (stack.predictor, stack.transformer):
            if not service.process.running():
                raise StackError(
                    f"{service.name} exited unexpectedly; last log lines:\n"
                    f"{service.process.log_tail()}"
                )
        time.sleep(1)
