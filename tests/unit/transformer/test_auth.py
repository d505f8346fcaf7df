from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from transformer.auth import AuthFailure, TokenFileError, TokenStore, parse_tokens

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789abc"


def write(path: Path, tokens: dict[str, str]) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(tokens))
    staging.replace(path)  # atomic, like a Secret volume update


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    write(path, {"alice": ALICE, "bob": BOB})
    return path


def test_each_named_token_authenticates_as_its_name(tokens_file: Path) -> None:
    store = TokenStore(tokens_file)
    assert store.authenticate(f"Bearer {ALICE}").token_name == "alice"
    assert store.authenticate(f"bearer {BOB}").token_name == "bob"


@pytest.mark.parametrize(
    ("header", "failure"),
    [
        (None, AuthFailure.MISSING),
        ("", AuthFailure.MISSING),
        (f"Basic {ALICE}", AuthFailure.MALFORMED),
        ("Bearer ", AuthFailure.MALFORMED),
        (f"Bearer {ALICE}x", AuthFailure.INVALID),
        (f"Bearer {ALICE[:-1]}", AuthFailure.INVALID),
    ],
)
def test_refusals_say_why(tokens_file: Path, header: str | None, failure: AuthFailure) -> None:
    result = TokenStore(tokens_file).authenticate(header)
    assert result.token_name is None
    assert result.failure is failure


def test_rotation_takes_effect_without_restart(tokens_file: Path) -> None:
    store = TokenStore(tokens_file)
    write(tokens_file, {"carol": "carol-token-0123456789", "bob": BOB})
    assert store.authenticate(f"Bearer {ALICE}").failure is AuthFailure.INVALID
    assert store.authenticate("Bearer carol-token-0123456789").token_name == "carol"
    assert store.authenticate(f"Bearer {BOB}").token_name == "bob"


def test_a_broken_update_keeps_the_last_good_tokens_and_never_logs_them(
    tokens_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = TokenStore(tokens_file)
    caplog.set_level(logging.INFO, logger="transformer.auth")
    tokens_file.write_text('{"alice": "short"}')
    assert store.authenticate(f"Bearer {ALICE}").token_name == "alice"
    tokens_file.unlink()
    assert store.authenticate(f"Bearer {BOB}").token_name == "bob"
    assert "keeping the previous tokens" in caplog.text
    assert ALICE not in caplog.text
    assert BOB not in caplog.text
    assert "short" not in caplog.text


def test_start_up_fails_fast_without_a_usable_file(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenStore(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b"{}", b'{"a": 5}', b'{"a": "too-short"}', b'{" ": "0123456789abcdefgh"}',
     b'{"a": "0123456789 abcdefgh"}'],
)  # fmt: skip
def test_invalid_token_documents_are_refused(raw: bytes) -> None:
    with pytest.raises(TokenFileError):
        parse_tokens(raw)


@pytest.mark.parametrize(
    "token",
    ["jeton-secret-évident-0123", "token-zero\u200bwidth-0123456", "token-\x7f-0123456789abcd"],
)
def test_tokens_that_are_not_printable_ascii_are_refused_by_name_never_by_value(
    token: str,
) -> None:
    with pytest.raises(TokenFileError, match="token 'team-x' must hold printable ASCII") as raised:
        parse_tokens(json.dumps({"team-x": token}).encode())
    assert token not in str(raised.value)
