"""The command line: kserve flags the transformer would ignore are refused at start."""

from __future__ import annotations

import pytest

from transformer.__main__ import IGNORED_FLAGS, parse_args, predictor_client
from transformer.grpc_predictor import GrpcPredictorClient
from transformer.predictor import PredictorClient
from transformer.settings import TransformerSettings

REQUIRED = ["--predictor_host", "predictor:80", "--predictor_protocol", "v2"]


def test_the_flags_kserve_passes_and_the_honoured_ones_are_accepted() -> None:
    args = parse_args(
        [*REQUIRED, "--model_name", "churn", "--http_port", "8080", "--enable_grpc", "false",
         "--enable_predictor_health_check", "--timeout-keep-alive", "30"]
    )  # fmt: skip
    assert (args.model_name, args.http_port, args.enable_grpc) == ("churn", 8080, False)
    assert (args.enable_predictor_health_check, args.timeout_keep_alive) == (True, 30)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--enable_grpc", "true"], "--enable_grpc"),
        (["--enable_latency_logging", "true"], "--enable_latency_logging"),
        (["--enable_docs_url", "true"], "--enable_docs_url"),
        (["--grpc_port", "9000"], "--grpc_port"),
        (["--max_threads", "8"], "--max_threads"),
        (["--access_log_format", "%(h)s %(r)s"], "--access_log_format"),
        (["--protocol", "v2"], "--protocol"),
        (["--predictor_request_timeout_seconds", "5"], "--predictor_request_timeout_seconds"),
        (["--predictor_request_retries", "2"], "--predictor_request_retries"),
        (["--workers", "2"], "--workers must be 1"),
        (["--predictor_protocol", "v1"], "--predictor_protocol must be grpc-v2 or v2"),
        (
            ["--predictor_protocol", "grpc-v2", "--predictor_use_ssl", "true"],
            "--predictor_use_ssl is not supported with --predictor_protocol grpc-v2",
        ),
    ],
)
def test_ignored_or_unsupported_flags_are_refused_with_a_reason(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args([*REQUIRED, *flags])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert named in error
    flag = named.split(maxsplit=1)[0].removeprefix("--")
    if flag in IGNORED_FLAGS:
        assert IGNORED_FLAGS[flag] in error


GRPC = (GrpcPredictorClient, "127.0.0.1:8086", "v2 gRPC, raw FP64 tensors")


@pytest.mark.parametrize(
    ("protocol", "encoding", "expected"),
    [
        ("grpc-v2", None, GRPC),
        ("grpc-v2", "json", GRPC),
        ("v2", None, (PredictorClient, "http://127.0.0.1:8086", "v2 REST, JSON")),
        ("v2", "binary", (PredictorClient, "http://127.0.0.1:8086", "v2 REST, binary tensors")),
    ],
)
def test_the_protocol_picks_the_predictor_client(
    protocol: str,
    encoding: str | None,
    expected: tuple[type, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if encoding is not None:
        monkeypatch.setenv("CHURN_TRANSFORMER_PREDICTOR_ENCODING", encoding)
    args = parse_args(["--predictor_host", "127.0.0.1:8086", "--predictor_protocol", protocol])
    predictor = predictor_client(args, TransformerSettings(bundle_uri="/bundle"))
    assert (type(predictor), predictor.address, predictor.transport) == expected


def test_an_encoding_is_refused_with_grpc_which_sends_raw_tensors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_TRANSFORMER_PREDICTOR_ENCODING", "binary")
    with pytest.raises(SystemExit) as exited:
        parse_args(["--predictor_host", "127.0.0.1:8086", "--predictor_protocol", "grpc-v2"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "CHURN_TRANSFORMER_PREDICTOR_ENCODING=binary applies to --predictor_protocol v2" in error
