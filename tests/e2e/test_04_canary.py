"""Step 4: a canary at weight W splits traffic binomially; promote and `helm rollback` move all."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from devstack.demo import SAMPLE_CUSTOMERS
from tests.e2e.journey import RELEASE, Gateway, OfflineModel, Release, TrainedModel
from tests.e2e.kube import say, wait_until

CANARY_WEIGHT = 30
REQUESTS = 200
# A false alarm needs a 4.5-sigma deviation: about 7 in a million runs.
SIGMAS = 4.5
CANDIDATE = f"{RELEASE}-candidate"


def binomial_bounds(requests: int, weight_percent: int) -> tuple[float, float]:
    p = weight_percent / 100
    spread = SIGMAS * math.sqrt(requests * p * (1 - p))
    return requests * p - spread, requests * p + spread


@pytest.mark.timeout(3600)
def test_canary_promotion_and_rollback(
    release: Release,
    gateway: Gateway,
    first_model: TrainedModel,
    second_model: TrainedModel,
    object_store: str,
) -> None:
    stable, candidate = first_model.version, second_model.version
    assert stable != candidate
    installed_revision = max(entry["revision"] for entry in release.history())

    # Start the canary: `helm upgrade` (make canary) with the second bundle at weight W.
    release.operate("canary", second_model.bundle_uri, str(CANARY_WEIGHT))
    release.wait_serving(CANDIDATE, second_model.bundle_uri)
    pinned = wait_until(
        "the route to pin requests to the candidate",
        lambda: gateway.answer_from(candidate, SAMPLE_CUSTOMERS, arm="candidate"),
        timeout=120,
    )
    np.testing.assert_allclose(
        pinned.output("churn_probability"),
        OfflineModel(second_model.bundle_uri).probabilities(SAMPLE_CUSTOMERS),
        rtol=0,
        atol=1e-12,
    )
    assert gateway.infer(SAMPLE_CUSTOMERS, arm="stable").model_version == stable

    answered = Counter(gateway.versions(SAMPLE_CUSTOMERS, REQUESTS))
    low, high = binomial_bounds(REQUESTS, CANARY_WEIGHT)
    assert set(answered) == {stable, candidate}, answered
    say(f"canary at {CANARY_WEIGHT}%: {dict(answered)}, candidate bounds {low:.0f}-{high:.0f}")
    assert low <= answered[candidate] <= high, (answered, (low, high))

    # Promote (make promote: two upgrades); from then on only the new version answers.
    release.operate("promote")
    gateway.settle_on(candidate, SAMPLE_CUSTOMERS, never=stable)
    release.wait_serving(RELEASE, second_model.bundle_uri)
    assert not release.kube.exists("-n", "churn", "inferenceservice", CANDIDATE)
    assert Counter(gateway.versions(SAMPLE_CUSTOMERS, 50)) == {candidate: 50}

    # `helm rollback` to the revision before the canary restores the old model everywhere.
    assert (
        release.revision_values(installed_revision)["stable"]["bundleUri"] == first_model.bundle_uri
    )
    release.operate("rollback", str(installed_revision))
    gateway.settle_on(stable, SAMPLE_CUSTOMERS, never=candidate)
    release.wait_serving(RELEASE, first_model.bundle_uri)
    assert Counter(gateway.versions(SAMPLE_CUSTOMERS, 50)) == {stable: 50}
