"""Bearer tokens from a mounted secret file holding several named tokens.

Rotation needs no downtime: add the new token under a new name, roll clients over, remove the
old one. The file is re-read whenever its identity (inode, size, mtime) changes, which also
covers Kubernetes' atomic symlink swap of Secret volumes. Tokens are compared as SHA-256
digests with hmac.compare_digest against every known token, so the time taken depends
neither on how much of a token matched nor on which token matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import orjson

logger = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
BEARER_PREFIX = "bearer "


class AuthFailure(StrEnum):
    """Why a request was refused; used as a metric label, so the set is closed."""

    MISSING = "missing"
    MALFORMED = "malformed"
    INVALID = "invalid"


class TokenFileError(ValueError):
    """The tokens file is unreadable or does not hold {name: token} with usable tokens."""


@dataclass(frozen=True, slots=True)
class AuthResult:
    token_name: str | None
    failure: AuthFailure | None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_tokens(raw: bytes) -> dict[str, bytes]:
    """Token name -> digest. Messages never include a token."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TokenFileError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(document, dict) or not document:
        raise TokenFileError('must be a non-empty JSON object {"name": "token", ...}')
    digests: dict[str, bytes] = {}
    for name, token in document.items():
        if not name.strip():
            raise TokenFileError("token names must not be blank")
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
            raise TokenFileError(
                f"token {name!r} must be a string of at least {MIN_TOKEN_LENGTH} characters"
            )
        if any(c.isspace() for c in token):
            raise TokenFileError(f"token {name!r} must not contain whitespace")
        if not (token.isascii() and token.isprintable()):
            # Header values arrive as bytes read as Latin-1: any other character never matches.
            raise TokenFileError(f"token {name!r} must hold printable ASCII characters only")
        digests[name] = _digest(token)
    return digests


class TokenStore:
    """The current tokens; call ``authenticate`` per request."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._identity: tuple[int, int, int] | None = None
        # Fails fast at start-up: a transformer that cannot authenticate anyone is misconfigured.
        self._tokens = self._read()

    @property
    def names(self) -> tuple[str, ...]:
        self._reload_if_changed()
        return tuple(self._tokens)

    def authenticate(self, authorization: str | None) -> AuthResult:
        if not authorization:
            return AuthResult(None, AuthFailure.MISSING)
        if authorization[: len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
            return AuthResult(None, AuthFailure.MALFORMED)
        presented = authorization[len(BEARER_PREFIX) :].strip()
        if not presented:
            return AuthResult(None, AuthFailure.MALFORMED)
        self._reload_if_changed()
        presented_digest = _digest(presented)
        matched: str | None = None
        for name, digest in self._tokens.items():
            # No early exit: every request compares against every token.
            if hmac.compare_digest(presented_digest, digest) and matched is None:
                matched = name
        if matched is None:
            return AuthResult(None, AuthFailure.INVALID)
        return AuthResult(matched, None)

    def _stat_identity(self) -> tuple[int, int, int]:
        stat = os.stat(self._path)
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def _read(self) -> dict[str, bytes]:
        try:
            identity = self._stat_identity()
            tokens = parse_tokens(self._path.read_bytes())
        except OSError as exc:
            raise TokenFileError(f"cannot read tokens file {self._path}: {exc.strerror}") from None
        except TokenFileError as exc:
            raise TokenFileError(f"tokens file {self._path}: {exc}") from None
        self._identity = identity
        logger.info("loaded %d token(s) from %s: %s", len(tokens), self._path, ", ".join(tokens))
        return tokens

    def _reload_if_changed(self) -> None:
        try:
            identity = self._stat_identity()
        except OSError:
            identity = None
        if identity == self._identity:
            return
        try:
            self._tokens = self._read()
        except TokenFileError as exc:
            # Mid-rotation files can be briefly absent or half-written: keep serving the last
            # good set, and try again once the file changes again (one log line per change).
            self._identity = identity
            logger.error("keeping the previous tokens: %s", exc)
