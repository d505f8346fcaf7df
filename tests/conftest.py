"""Suite-wide guard rails."""

from __future__ import annotations

import os

# Nothing in the tests may reach a real cloud endpoint: unless a test points S3 at its own
# loopback server, boto3 talks to a closed loopback port and fails fast.
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
