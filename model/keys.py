"""The pseudonymous customer key: HMAC-SHA256 of the customerID under a secret key.

The prediction log stores this key instead of the customerID, and the monitoring report hashes
the labels' customerIDs with the same secret to join them. Without the secret a key reveals
nothing about the customer and cannot be recomputed from a guessed ID.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path


def customer_key(customer_id: str, secret: bytes) -> str:
    """Hex HMAC-SHA256 of one customerID (surrounding whitespace ignored, as in exports)."""
    return hmac.new(secret, customer_id.strip().encode(), hashlib.sha256).hexdigest()


def customer_keys(customer_ids: Iterable[str], secret: bytes) -> list[str]:
    return [customer_key(str(customer_id), secret) for customer_id in customer_ids]


def read_secret(path: Path) -> bytes:
    """The key from a mounted Secret file, without the trailing newline editors add."""
    secret = path.read_bytes().rstrip(b"\r\n")
    if not secret:
        raise ValueError(f"{path} holds an empty customer-key secret")
    return secret
