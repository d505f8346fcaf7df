"""A few thousand hostile requests against the real transformer in front of a real v2 predictor.

Across the whole run: no 5xx, every request answered, nothing without a valid token in the
header block succeeds, every refusal the transformer writes is JSON with a reason, readiness
never drops, and the model still answers correctly afterwards.

HOSTILE_REQUESTS scales the count (default 3000); HOSTILE_SEED replays another run.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from devstack.demo import v2_request
from devstack.stack import Stack

from .conftest import MAX_BODY_BYTES, Trained
from .hostile import Answer, Case, Context, Generator, exchange, wire

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("HOSTILE_REQUESTS", "3000"))
SEED = int(os.environ.get("HOSTILE_SEED", "20261129"))
# Concurrent clients: enough to keep the transformer busy while the readiness poller runs.
CLIENTS = 4
# Generous: a hung request is a failure, but a slow shared CI machine is not.
REQUEST_TIMEOUT_SECONDS = 60.0
PROBE_TIMEOUT_SECONDS = 10.0
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class Readiness:
    """Polls /v2/health/ready on its own connection for as long as the run lasts."""

    port: int
    statuses: Counter[int | str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        while not self._stop.is_set():
            connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=PROBE_TIMEOUT_SECONDS
            )
            try:
                connection.request("GET", "/v2/health/ready")
                self.statuses[connection.getresponse().status] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.statuses[type(exc).__name__] += 1
            finally:
                connection.close()
            self._stop.wait(0.02)

    @contextmanager
    def running(self) -> Iterator[Readiness]:
        thread = threading.Thread(target=self.poll, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def violations(case: Case, answer: Answer | None) -> list[str]:
    """What this answer breaks of the suite-wide rules and the case's own expectation."""
    if answer is None:
        return ["connection ended without an HTTP response"]
    found = []
    status = answer.status
    if status >= 500:
        found.append(f"status {status}")
    unguarded = not case.authorized and not case.open_path
    if unguarded and (200 <= status < 300 or status == 101):
        found.append(f"status {status} without a valid token in the header block")
    if case.expected is not None and status not in case.expected:
        found.append(f"status {status}, expected one of {sorted(case.expected)}")
    # Refusals by the HTTP parser itself included: JSON with a reason (HEAD has no body).
    if 400 <= status < 500 and case.draft.method != "HEAD":
        found += json_error_problems(answer.body)
    if status == 400 and case.draft.names is not None and not found:
        found += naming_problems(answer.body, *case.draft.names)
    request_id = answer.headers.get("x-request-id")
    if request_id is not None and not SAFE_REQUEST_ID.fullmatch(request_id):
        found.append(f"unsafe x-request-id echoed: {request_id[:80]!r}")
    return found


def json_error_problems(body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError:
        return [f"error body is not JSON: {body[:120]!r}"]
    if not isinstance(document, dict) or not isinstance(document.get("error"), str):
        return [f'error body has no "error" string: {body[:120]!r}']
    return [] if document["error"].strip() else ["empty error reason"]


def naming_problems(body: bytes, name: str, row: int | None) -> list[str]:
    details = json.loads(body).get("details") or []
    if any(d.get("input") == name and (row is None or d.get("row") == row) for d in details):
        return []
    where = name if row is None else f"{name} row {row}"
    return [f"error details do not name {where}: {body[:300]!r}"]


def send(port: int, case: Case) -> Answer | None:
    head = case.draft.method == "HEAD"
    return exchange(port, wire(case.draft), head=head, timeout=REQUEST_TIMEOUT_SECONDS)


def known_row_probability(stack: Stack, trained: Trained) -> tuple[float, float]:
    customer = trained.customers[:1]
    response = httpx.post(stack.infer_url, json=v2_request(customer), headers=stack.auth_header())
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    return outputs["churn_probability"][0], float(trained.expected_probabilities(customer)[0])


def describe(case: Case) -> str:
    request = wire(case.draft)
    shown = request[:240] + (b"..." if len(request) > 240 else b"")
    return f"[{case.category}, authorized={case.authorized}] {shown!r}"


def test_hostile_requests_are_all_answered_safely(stack: Stack, trained: Trained) -> None:
    port = int(stack.transformer.url.rsplit(":", 1)[1])
    token = stack.tokens[next(iter(stack.tokens))]
    generator = Generator(
        random.Random(SEED),  # noqa: S311 - a replayable sequence, not a secret
        Context(token, trained.customers, MAX_BODY_BYTES, v2_request),
    )
    by_category: Counter[str] = Counter()
    by_status: Counter[int | str] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    with Readiness(port).running() as readiness, ThreadPoolExecutor(CLIENTS) as pool:
        # Cases are drawn in order from the one RNG, sent a batch at a time.
        for offset in range(0, REQUESTS, 64):
            batch = [generator.case() for _ in range(min(64, REQUESTS - offset))]
            for case, answer in zip(batch, pool.map(lambda c: send(port, c), batch), strict=True):
                by_category[case.category] += 1
                by_status[answer.status if answer else "none"] += 1
                failures += [f"{describe(case)}: {v}" for v in violations(case, answer)]
    elapsed = time.monotonic() - started
    probability, expected = known_row_probability(stack, trained)
    print(
        f"\nhostile: {sum(by_category.values())} requests (seed {SEED}) in {elapsed:.1f} s, "
        f"{sum(by_category.values()) - by_status['none']} answered; "
        f"by category {dict(sorted(by_category.items()))}; "
        f"by status {dict(sorted(by_status.items(), key=str))}; "
        f"readiness polls {dict(readiness.statuses)}; failures {len(failures)}"
    )
    assert stack.transformer.process.running()
    assert not failures, f"{len(failures)} violation(s):\n" + "\n".join(failures[:40])
    assert set(readiness.statuses) == {200}, readiness.statuses
    assert probability == pytest.approx(expected, abs=1e-9)
