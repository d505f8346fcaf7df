"""Suite-wide guard rails."""

from __future__ import annotations

import os

from hypothesis import settings

# Nothing in the tests may reach a real cloud endpoint: unless a test points S3 at its own
# loopback server, boto3 talks to a closed loopback port and fails fast.
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

# Hypothesis: a small "ci" profile by default; `make fuzz` runs the same properties with
# HYPOTHESIS_PROFILE=deep. No deadline: a shared 2-core machine makes per-example timing noise.
settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("deep", max_examples=10_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
