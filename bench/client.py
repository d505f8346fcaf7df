"""Predictor client benchmark: the transformer's hand-written HTTP/1.1 client against library
clients, each calling a real v2 server (kserve-sklearnserver) on loopback with the same requests.

    python -m bench.client [--runs 5] [--seconds 1.5]

Trains a small bundle (python -m training, 2,000 rows), starts kserve-sklearnserver in its own
process, and checks that every client answers every prepared request with the reference
probabilities (to 1e-9) and with exactly the same numbers as the others. Then, for batches of 1,
100 and 1,000 rows of the FP64 model matrix at 8 concurrent calls, each client runs closed loop
for ``--seconds``; runs are interleaved (every client at every batch size, then the next run,
client order rotated). Client CPU is this process's CPU time (the server runs elsewhere); the
server's comes from /proc. Writes bench/results/client.json and client.md; the decision rule it
applies is in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
import joblib
import numpy as np
import numpy.typing as npt

from devstack.stack import MODEL_NAME, Service, sklearnserver, sklearnserver_python, train_bundle
from model.bundle import MODEL_PATH, load_serving_bundle
from transformer.codec import decode_predictor_response, encode_predictor_request
from transformer.predictor import PredictorClient, check_status
from transformer.settings import DEFAULT_PREDICTOR_MAX_CONNECTIONS

from . import procstat
from .payloads import Batch, load_customers, make_batches

RESULTS = Path(__file__).parent / "results"
TOLERANCE = 1e-9
SEED = 7
TRAINING_ROWS = 2000
CONCURRENCY = 8
TIMEOUT_SECONDS = 30.0
# Rows per request -> distinct request bodies cycled through.
BODIES = {1: 16, 100: 4, 1000: 1}
HAND_WRITTEN = "hand-written"
RULE = (
    "keep the hand-written client only if, on client CPU per request, its median beats every "
    "library's by more than the spread (the wider of the two interquartile ranges over runs) "
    "at batch 1, where the client's own work is a visible share, and loses by more than the "
    "spread at no batch size."
)

Matrix = npt.NDArray[np.float64]
# Batch size -> arm -> one record per interleaved run, as measure() returns it.
Measured = dict[str, dict[str, list[dict[str, float]]]]

# httpcore 1.0.9 imports sniffio afresh for every lock it creates; anyio >= 4.11 no longer
# installs sniffio, and Python does not cache a failed import, so each httpx request paid a
# sys.path scan (about 2 ms of CPU here; encode/httpcore#1103, open). Caching the miss
# measures httpx as that fix leaves it, not the regression.
SNIFFIO_MISSING = importlib.util.find_spec("sniffio") is None
if SNIFFIO_MISSING:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


class Client(Protocol):
    async def predict_proba(self, matrix: Matrix, request_id: str) -> Matrix: ...

    async def aclose(self) -> None: ...


class LibraryClient:
    """A library's HTTP client behind the hand-written client's interface: the same codec and
    status mapping, and the same single retry when a kept connection closes just as a request
    goes out (the server's uvicorn closes connections idle for 5 s)."""

    # What a request on a kept connection the server has just closed fails with.
    stale: tuple[type[Exception], ...] = ()

    def __init__(self, base_url: str, model_name: str) -> None:
        self._base_url = base_url
        self._url = f"{base_url}/v2/models/{model_name}/infer"

    async def predict_proba(self, matrix: Matrix, request_id: str) -> Matrix:
        body, headers = encode_predictor_request(matrix, request_id, binary=False)
        headers["x-request-id"] = request_id
        try:
            status, response_headers, content = await self._post(body, headers)
        except self.stale:
            status, response_headers, content = await self._post(body, headers)
        check_status(status, self._base_url)
        return decode_predictor_response(content, response_headers, matrix.shape[0])

    async def _post(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class HttpxClient(LibraryClient):
    """httpx.AsyncClient with a bounded pool."""

    stale = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

    def __init__(self, base_url: str, model_name: str) -> None:
        super().__init__(base_url, model_name)
        limits = httpx.Limits(
            max_connections=DEFAULT_PREDICTOR_MAX_CONNECTIONS,
            max_keepalive_connections=DEFAULT_PREDICTOR_MAX_CONNECTIONS,
        )
        self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, limits=limits)

    async def _post(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        response = await self._client.post(self._url, content=body, headers=headers)
        return response.status_code, response.headers, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpClient(LibraryClient):
    """aiohttp.ClientSession on a TCPConnector(limit=...)."""

    stale = (aiohttp.ClientConnectionError,)

    def __init__(self, base_url: str, model_name: str) -> None:
        super().__init__(base_url, model_name)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=DEFAULT_PREDICTOR_MAX_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        )

    async def _post(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        async with self._session.post(self._url, data=body, headers=headers) as response:
            return response.status, response.headers, await response.read()

    async def aclose(self) -> None:
        await self._session.close()


# Name -> how to make that client for a running server. The first one is the baseline the
# others' answers are checked against.
Arms = dict[str, Callable[[Service], Client]]
ARMS: Arms = {
    HAND_WRITTEN: lambda server: PredictorClient(server.url, MODEL_NAME, TIMEOUT_SECONDS),
    "httpx": lambda server: HttpxClient(server.url, MODEL_NAME),
    "aiohttp": lambda server: AiohttpClient(server.url, MODEL_NAME),
}


def say(message: str) -> None:
    print(f"[bench.client] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Prepared:
    batches: dict[int, list[Batch]]
    reference: dict[int, list[Matrix]]  # class-1 probabilities per batch, in process


def prepare(work: Path) -> tuple[Path, Prepared]:
    bundle_dir = train_bundle(work, rows=TRAINING_ROWS, progress=say)
    spec = load_serving_bundle(str(bundle_dir)).spec
    classifier = joblib.load(bundle_dir / MODEL_PATH)
    customers = load_customers(
        work / "data/customers.csv", max(s * n for s, n in BODIES.items()), SEED
    )
    batches = {size: make_batches(customers, size, count, spec) for size, count in BODIES.items()}
    reference = {
        size: [np.asarray(classifier.predict_proba(b.matrix)[:, 1]) for b in group]
        for size, group in batches.items()
    }
    return bundle_dir, Prepared(batches, reference)


async def verify(clients: dict[str, Client], prepared: Prepared) -> float:
    """Every client answers every batch like the reference and bit for bit like the first."""
    worst = 0.0
    for size, group in prepared.batches.items():
        for batch, expected in zip(group, prepared.reference[size], strict=True):
            answers = {
                arm: await client.predict_proba(batch.matrix, "verify")
                for arm, client in clients.items()
            }
            first = next(iter(answers.values()))
            difference = float(np.max(np.abs(first - expected)))
            if not difference <= TOLERANCE:
                raise RuntimeError(
                    f"batch of {size} from row {batch.first_row}: differs from the reference "
                    f"by {difference:.3g}"
                )
            for arm, answer in answers.items():
                if not np.array_equal(answer, first):
                    raise RuntimeError(f"{arm} answers batch of {size} differently")
            worst = max(worst, difference)
    return worst


async def closed_loop(client: Client, matrices: list[Matrix], seconds: float) -> int:
    """CONCURRENCY callers, each sending its next request when the last is answered."""
    deadline = time.perf_counter() + seconds

    async def caller(offset: int) -> int:
        sent = 0
        while time.perf_counter() < deadline:
            await client.predict_proba(matrices[(offset + sent) % len(matrices)], "bench")
            sent += 1
        return sent

    return sum(await asyncio.gather(*(caller(i) for i in range(CONCURRENCY))))


async def measure(
    client: Client, matrices: list[Matrix], seconds: float, server: Service
) -> dict[str, float]:
    gc.collect()
    server_before = procstat.tree_cpu_seconds(server.process.pid)
    machine_before = procstat.machine_busy_seconds()
    wall_before, cpu_before = time.perf_counter(), time.process_time()
    requests = await closed_loop(client, matrices, seconds)
    cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
    server_cpu = procstat.tree_cpu_seconds(server.process.pid) - server_before
    other = procstat.machine_busy_seconds() - machine_before - cpu - server_cpu
    return {
        "requests": requests,
        "seconds": round(wall, 3),
        "requests_per_second": round(requests / wall, 1),
        "client_cpu_ms_per_request": round(cpu / requests * 1000, 4),
        "server_cpu_ms_per_request": round(server_cpu / requests * 1000, 4),
        "client_and_server_cpu_ms_per_request": round((cpu + server_cpu) / requests * 1000, 4),
        "other_busy_cores": round(max(other, 0.0) / wall, 2),
    }


def summary(values: list[float]) -> dict[str, float]:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {
        "median": round(statistics.median(values), 4),
        "q1": round(q1, 4),
        "q3": round(q3, 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def compare(ours: list[float], theirs: list[float]) -> dict[str, Any]:
    """One arm (ours) vs another (theirs) on one number per run, lower is better: the margin
    between the medians against the spread (the wider of the two IQRs; min-max reported beside
    it), and in how many interleaved runs ours was lower."""
    ours_summary, theirs_summary = summary(ours), summary(theirs)
    margin = theirs_summary["median"] - ours_summary["median"]

    def widest(low: str, high: str) -> float:
        return max(s[high] - s[low] for s in (ours_summary, theirs_summary))

    spread, full_range = widest("q1", "q3"), widest("min", "max")
    return {
        "margin": round(margin, 4),
        "spread_iqr": round(spread, 4),
        "spread_min_max": round(full_range, 4),
        "lower_in_runs": sum(o < t for o, t in zip(ours, theirs, strict=True)),
        "runs": len(ours),
        "wins": margin > spread,
        "loses": -margin > spread,
    }


def per_run(measured: Measured, key: str) -> dict[str, dict[str, list[float]]]:
    """Batch size -> arm -> ``key`` of every run."""
    return {
        size: {arm: [r[key] for r in runs] for arm, runs in arms.items()}
        for size, arms in measured.items()
    }


def verdict(comparison: dict[str, Any], ours: str) -> str:
    if comparison["wins"]:
        return f"{ours} wins"
    return f"{ours} loses" if comparison["loses"] else "within the spread"


def comparison_table(
    comparisons: dict[str, dict[str, dict[str, Any]]], ours: str, unit: str
) -> list[str]:
    """Markdown rows: batch size, the arm compared with, margin, spreads, runs won."""
    lines = [
        f"| rows | {ours} vs | median margin {unit} | IQR spread {unit} | verdict "
        f"| min-max spread {unit} | runs where {ours} was lower |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    for size, versus in comparisons.items():
        for arm, c in versus.items():
            lines.append(
                f"| {size} | {arm} | {c['margin']:.3f} | {c['spread_iqr']:.3f} "
                f"| {verdict(c, ours)} | {c['spread_min_max']:.3f} "
                f"| {c['lower_in_runs']} of {c['runs']} |"
            )
    return lines


def decide(measured: Measured) -> dict[str, Any]:
    """RULE, on client CPU per request."""
    cpu = per_run(measured, "client_cpu_ms_per_request")
    comparisons = {
        size: {
            arm: compare(arms[HAND_WRITTEN], values)
            for arm, values in arms.items()
            if arm != HAND_WRITTEN
        }
        for size, arms in cpu.items()
    }
    wins_at_1 = all(c["wins"] for c in comparisons["1"].values())
    never_loses = not any(c["loses"] for s in comparisons.values() for c in s.values())
    return {"comparisons": comparisons, "keep_hand_written": wins_at_1 and never_loses}


async def benchmark(
    arms: Arms, server: Service, prepared: Prepared, runs: int, seconds: float
) -> tuple[float, Measured]:
    clients = {arm: make(server) for arm, make in arms.items()}
    try:
        worst = await verify(clients, prepared)
        say(f"every client answers like the reference (max abs diff {worst:.2g})")
        matrices = {size: [b.matrix for b in group] for size, group in prepared.batches.items()}
        for client in clients.values():  # warm pools, caches and the server
            for group in matrices.values():
                await closed_loop(client, group, seconds / 4)
        measured: Measured = {str(size): {arm: [] for arm in clients} for size in matrices}
        order = list(clients)
        for run in range(runs):
            rotated = order[run % len(order) :] + order[: run % len(order)]
            for size, group in matrices.items():
                for arm in rotated:
                    result = await measure(clients[arm], group, seconds, server)
                    measured[str(size)][arm].append(result)
                    say(f"run {run + 1}/{runs} batch {size:>4} {arm:>12}: {result}")
        return worst, measured
    finally:
        for client in clients.values():
            await client.aclose()


def installed_versions(python: Path, *names: str) -> dict[str, str]:
    """The versions of ``names`` installed for another interpreter (a server's venv)."""
    query = "import importlib.metadata as m, sys; print(*map(m.version, sys.argv[1:]))"
    found = subprocess.run(
        [str(python), "-c", query, *names], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.split()
    return dict(zip(names, found, strict=True))


def versions(*names: str) -> dict[str, str]:
    """This process's ``names`` and Python, and the runtime's kserve and scikit-learn."""
    runtime = installed_versions(sklearnserver_python(), "kserve", "scikit-learn")
    return {
        **{name: importlib.metadata.version(name) for name in names},
        "python": platform.python_version(),
        **{f"kserve-sklearnserver {name}": version for name, version in runtime.items()},
    }


def _cell(numbers: dict[str, float], digits: int) -> str:
    return (
        f"{numbers['median']:.{digits}f} ({numbers['q1']:.{digits}f}-{numbers['q3']:.{digits}f}; "
        f"{numbers['min']:.{digits}f}-{numbers['max']:.{digits}f})"
    )


def run_header(results: dict[str, Any]) -> str:
    """The first paragraph of a results table: what ran, how long, and the machine's noise."""
    return (
        f"Run of {results['started_at']} ({results['wall_seconds']:.0f} s): "
        f"{results['runs']} interleaved runs of {results['seconds_per_run']} s per client and "
        f"batch size, {CONCURRENCY} concurrent calls, against kserve-sklearnserver (one process) "
        f"on loopback; {results['machine']['cores']} cores shared by this client process and the "
        f"server; other processes used {results['other_busy_cores_median']} cores (median of "
        "runs). Each cell: median (interquartile range; min-max) over runs."
    )


def summary_table(results: dict[str, Any], columns: dict[str, tuple[str, int]]) -> list[str]:
    """One row per batch size and client; ``columns``: measured key -> (heading, digits)."""
    headings = [heading for heading, _ in columns.values()]
    lines = [
        "| rows | client | " + " | ".join(headings) + " |",
        "|---:|---|" + "---:|" * len(columns),
    ]
    for size, arms in results["summary"].items():
        for arm, numbers in arms.items():
            cells = [_cell(numbers[key], digits) for key, (_, digits) in columns.items()]
            lines.append(f"| {size} | {arm} | " + " | ".join(cells) + " |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    decision = results["decision"]
    lines = [run_header(results), ""]
    lines += summary_table(
        results,
        {
            "client_cpu_ms_per_request": ("client CPU ms / request", 3),
            "requests_per_second": ("requests / s", 0),
            "server_cpu_ms_per_request": ("server CPU ms / request", 3),
        },
    )
    lines += ["", *comparison_table(decision["comparisons"], HAND_WRITTEN, "ms")]
    keep = "keep the hand-written client" if decision["keep_hand_written"] else "switch"
    lines += ["", f"Rule: {decision['rule']} Decision: **{keep}**.", ""]
    if results["httpx_failed_sniffio_import_cached"]:
        lines += [
            "httpx ran with the failed `import sniffio` cached (encode/httpcore#1103): "
            "without that, each of its requests paid a sys.path scan.",
            "",
        ]
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()))
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None, module: str, description: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per client (5)")
    parser.add_argument("--seconds", type=float, default=1.5, help="per run and batch size")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    return parser.parse_args(argv)


def run(arms: Arms, args: argparse.Namespace, summarised: Iterable[str]) -> dict[str, Any]:
    """Train, start kserve-sklearnserver, verify and measure every arm; the results without a
    decision. ``summarised``: the measured keys to summarise over runs."""
    started_at, started = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        work = Path(tmp)
        bundle_dir, prepared = prepare(work)
        with sklearnserver(bundle_dir, work, progress=say) as server:
            worst, measured = asyncio.run(
                benchmark(arms, server, prepared, args.runs, args.seconds)
            )
    summaries = {
        size: {
            arm: {key: summary([r[key] for r in runs]) for key in summarised}
            for arm, runs in by_arm.items()
        }
        for size, by_arm in measured.items()
    }
    others = [r["other_busy_cores"] for a in measured.values() for s in a.values() for r in s]
    return {
        "started_at": started_at,
        "wall_seconds": round(time.monotonic() - started, 1),
        "runs": args.runs,
        "seconds_per_run": args.seconds,
        "concurrency": CONCURRENCY,
        "max_connections": DEFAULT_PREDICTOR_MAX_CONNECTIONS,
        "bodies": BODIES,
        "max_abs_diff_vs_reference": worst,
        "machine": {"cores": os.cpu_count(), "cpu_model": procstat.cpu_model()},
        "other_busy_cores_median": round(statistics.median(others), 2),
        "summary": summaries,
        "runs_measured": measured,
    }


def write(results: dict[str, Any], output: Path, name: str, table: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (output / f"{name}.md").write_text(table)
    print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "bench.client", __doc__)
    summarised = (
        "client_cpu_ms_per_request",
        "requests_per_second",
        "server_cpu_ms_per_request",
    )
    results = run(ARMS, args, summarised)
    results["versions"] = versions("httptools", "httpx", "aiohttp")
    results["httpx_failed_sniffio_import_cached"] = SNIFFIO_MISSING
    results["decision"] = {**decide(results["runs_measured"]), "rule": RULE}
    write(results, args.output, "client", markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
