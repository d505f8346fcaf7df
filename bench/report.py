"""Results -> target verdicts, serving.json, the serving.md tables and the serving.png plot.

Verdicts are computed from the measured numbers here, never written by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Record = dict[str, Any]
PEERS = ("peer-a-mlflow", "peer-b-mlserver-pd")
# Other jobs using more cores than this during a phase make its throughput suspect.
DISTURBED_CORES = 0.5
ROLE_COLOURS = {
    "floor": "tab:gray",
    "predictor": "tab:green",
    "chain": "tab:blue",
    "peer": "tab:orange",
}


def percentile_summary(latencies_ms: npt.NDArray[np.float64]) -> dict[str, float]:
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
    return {
        "mean": round(float(latencies_ms.mean()), 4),
        "max": round(float(latencies_ms.max()), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
    }


# --- lookups ---------------------------------------------------------------------------------


def by_id(results: Record) -> dict[str, Record]:
    return {s["id"]: s for s in results["systems"]}


def phase(system: Record, batch: int, concurrency: int | None = None) -> Record | None:
    """The phase at ``batch`` rows and ``concurrency`` (default: the highest measured)."""
    matching = [p for p in system.get("phases", []) if p["batch"] == batch]
    if concurrency is not None:
        matching = [p for p in matching if p["concurrency"] == concurrency]
    return max(matching, key=lambda p: p["concurrency"]) if matching else None


def saturation(system: Record) -> float | None:
    """Batch-1 throughput at saturation: the best req/s over the batch-1 load levels."""
    rates = [p["requests_per_second"] for p in system.get("phases", []) if p["batch"] == 1]
    return max(rates) if rates else None


def rows_per_second(system: Record, batch: int) -> float | None:
    found = phase(system, batch)
    return found["rows_per_second"] if found else None


def requests_per_cpu_second(system: Record, batch: int) -> float | None:
    """Requests per second of server CPU (all its processes) at ``batch`` rows, most
    connections: throughput as if the system had a core to itself, whatever the sharing."""
    found = phase(system, batch)
    cpu_ms = sum(found["cpu_ms_per_request"].values()) if found else 0.0
    return 1000 / cpu_ms if cpu_ms else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


# --- verdicts --------------------------------------------------------------------------------

# The targets (bench/README.md): the chain's batch-1 saturation against its runtime alone, the
# transformer's CPU per request against the runtime's at each of these batch sizes, and the
# chain's batch-1 saturation against each peer.
SATURATION_SHARE = 0.8
CPU_BATCHES = (1, 100, 1000)
PEER_FACTOR = 10


def verdicts(results: Record) -> list[Record]:
    systems = by_id(results)
    found: list[Record] = []
    for chain_id, predictor_id in results["predictor_of"].items():
        chain = systems.get(chain_id)
        if chain is None:
            continue
        if predictor_id in systems:
            runtime = systems[predictor_id]
            found.append(_throughput_verdict(chain, runtime, "the runtime alone", SATURATION_SHARE))
        found.append(_cpu_verdict(chain))
        for peer_id in PEERS:
            if peer_id in systems:
                peer = systems[peer_id]
                name = peer["label"].split(":")[0]
                found.append(_throughput_verdict(chain, peer, name, PEER_FACTOR))
    phases = [(s["id"], p) for s in results["systems"] for p in s.get("phases", [])]
    profiled = [(s["id"], p) for s in results["systems"] for p in s.get("profiles", [])]
    discarded = [a for _, p in phases for a in p.get("discarded_attempts", [])]
    errors = (
        sum(p["error_count"] for _, p in phases)
        + sum(a["error_count"] for a in discarded)
        + sum(p["errors_while_profiled"] for _, p in profiled)
    )
    failing = sorted({sid for sid, p in phases if p["error_count"]} | set(results["failures"]))
    found.append(
        {
            "target": "No errors at any load level",
            "system": "all",
            "passed": errors == 0 and not results["failures"],
            "detail": f"{errors} failed requests over {len(phases)} phases "
            f"(+{len(discarded)} repeated attempts, + profiling runs)"
            + (f"; failing: {', '.join(failing)}" if failing else ""),
        }
    )
    return found


def _profile_note(chain: Record, batches: Iterable[int]) -> str:
    """Where serving.md profiles the transformer at the batch sizes of a missed target."""
    titles = [
        _profile_title(chain, prof)
        for prof in chain.get("profiles", [])
        if prof["process"] == "transformer" and prof["batch"] in batches
    ]
    if not titles:
        return "; no profile at this batch size"
    return "; see " + ", ".join(f"'{title}'" for title in titles) + " in serving.md"


def _throughput_verdict(chain: Record, other: Record, name: str, minimum: float) -> Record:
    """The chain's batch-1 saturation throughput against ``minimum`` x another system's."""
    ours, theirs = saturation(chain), saturation(other)
    factor = ratio(ours, theirs)
    verdict = {
        "target": f"Batch-1 saturation throughput >= {minimum:g} x {name}",
        "system": chain["id"],
    }
    if factor is None or ours is None or theirs is None:
        return {**verdict, "passed": False, "detail": "not measured"}
    passed = factor >= minimum
    detail = f"{ours:.0f} vs {theirs:.0f} req/s (x{factor:.2f})"
    return {
        **verdict,
        "passed": passed,
        "detail": detail + ("" if passed else _profile_note(chain, [1])),
    }


def _cpu_verdict(chain: Record) -> Record:
    """At each target batch size, the phase with the most connections."""
    per_batch = {batch: phase(chain, batch) for batch in CPU_BATCHES}
    missed = [
        batch
        for batch, found in per_batch.items()
        if found is None
        or found["cpu_ms_per_request"]["transformer"] > found["cpu_ms_per_request"]["predictor"]
    ]
    detail = "; ".join(
        f"b{b} c{p['concurrency']}: {p['cpu_ms_per_request']['transformer']:.2f} vs "
        f"{p['cpu_ms_per_request']['predictor']:.2f} ms"
        if p
        else f"b{b}: not measured"
        for b, p in per_batch.items()
    )
    return {
        "target": "Transformer CPU per request <= runtime CPU per request (batch "
        f"{', '.join(map(str, CPU_BATCHES))})",
        "system": chain["id"],
        "passed": not missed,
        "detail": f"transformer vs runtime CPU ms/request: {detail}"
        + (_profile_note(chain, missed) if missed else ""),
    }


# --- markdown --------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _thousands(value: float | None) -> float | None:
    return None if value is None else value * 1000


def _times(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], align: str) -> list[str]:
    """A markdown table: the first column left-aligned, the others by ``align``."""
    header = list(header)
    aligns = ["---", *(align for _ in header[1:])]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _verdict_table(results: Record) -> list[str]:
    return _table(
        ["target", "system", "verdict", "numbers"],
        (
            [v["target"], v["system"], "PASS" if v["passed"] else "**FAIL**", v["detail"]]
            for v in results["verdicts"]
        ),
        "---",
    )


def _noise(results: Record) -> str:
    other = [p["other_busy_cores"] for s in results["systems"] for p in s.get("phases", [])
             if "other_busy_cores" in p]  # fmt: skip
    if not other:
        return "no networked phase ran"
    return (
        f"other processes used {np.mean(other):.2f} cores on average during the measured phases "
        f"(max {max(other):.2f}) of {results['machine']['cores']}"
    )


def markdown(results: Record) -> str:
    m, plan = results["machine"], results["plan"]
    systems = by_id(results)
    lines = [
        f"# Serving benchmark ({results['mode']} run, {results['started_at']})",
        "",
        f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Linux "
        f"{m['kernel']}. {m['shared'].capitalize()}. Load average before/after: "
        f"{m['load_average_before']} / {m['load_average_after']}; {_noise(results)}.",
        "",
        f"Method: wrk closed loop (1 thread, keep-alive), each phase {plan['warmup_seconds']} s "
        f"warm-up then {plan['seconds_per_phase']} s measured; every system answers the same "
        f"customer rows and was checked against the in-process reference to "
        f"{plan['tolerance']:g} before load. CPU from /proc (utime+stime of each server's "
        f"process tree), peak RSS = VmHWM. Bundle {results['model']['bundle_version']}, "
        f"{results['model']['features']} model features. Whole run: "
        f"{results['wall_seconds']:.0f} s.",
        "",
        "## Target verdicts",
        "",
    ]
    lines += _verdict_table(results)
    networked = [s for s in results["systems"] if s["role"] != "floor"]
    concurrencies = sorted({p["concurrency"] for s in networked for p in s["phases"]
                            if p["batch"] == 1})  # fmt: skip
    lines += ["## Latency at batch 1 (ms: p50 / p90 / p99)", ""]
    lines += _table(
        ["system", *(f"{c} conn" for c in concurrencies)],
        (
            [s["label"], *(_latency(phase(s, 1, c)) for c in concurrencies)]
            for s in results["systems"]
        ),
        "---:",
    )
    lines += ["## Throughput", ""]
    peers = {pid: saturation(systems[pid]) for pid in PEERS if pid in systems}
    rows = []
    for s in results["systems"]:
        predictor = systems.get(results["predictor_of"].get(s["id"], ""))
        sat = saturation(s)
        rows.append(
            [
                s["label"],
                _number(sat),
                _times(ratio(sat, saturation(predictor))) if predictor else "-",
                *(_times(ratio(sat, peers[pid])) for pid in peers),
                _number(rows_per_second(s, 100)),
                _number(rows_per_second(s, 1000)),
                _times(ratio(rows_per_second(s, 1000), rows_per_second(predictor, 1000)))
                if predictor
                else "-",
                _number(requests_per_cpu_second(s, 1)),
                _number(_thousands(requests_per_cpu_second(s, 1000))),
            ]
        )
    lines += _table(
        ["system", "batch 1 req/s (saturation)", "vs runtime alone",
         *(f"vs {systems[pid]['label'].split(':')[0]}" for pid in peers),
         "rows/s batch 100", "rows/s batch 1000", "batch 1000 vs runtime alone",
         "batch 1 req per CPU-s", "batch 1000 rows per CPU-s"],
        rows,
        "---:",
    )  # fmt: skip
    lines += [
        "Saturation = the best batch-1 req/s over the load levels. Ratios > 1 mean faster. "
        "Per CPU-s = per second of server CPU summed over the system's processes (a chain "
        "pays for both hops), at the most connections measured: independent of how the cores "
        "were shared, and less sensitive than throughput to other jobs.",
        "",
        "## CPU and memory per server process",
        "",
    ]
    cpu_rows = []
    for s in results["systems"]:
        sat_phase = phase(s, 1)
        for process in (sat_phase or {}).get("cpu_ms_per_request", {}):
            cpu_rows.append(
                [
                    s["label"],
                    process,
                    _number(_cpu(sat_phase, process, "cpu_ms_per_request"), 3),
                    *(_number(_cpu(phase(s, b), process, "cpu_seconds_per_1000_rows"), 4)
                      for b in (100, 1000)),
                    _number(s.get("peak_rss_mib", {}).get(process), 0),
                ]
            )  # fmt: skip
    lines += _table(
        ["system", "process", "CPU ms / request, batch 1 (most connections)",
         "CPU s / 1000 rows, batch 100", "CPU s / 1000 rows, batch 1000", "peak RSS MiB"],
        cpu_rows,
        "---:",
    )  # fmt: skip
    for s in results["systems"]:
        for prof in s.get("profiles", []):
            lines += _profile_section(s, prof)
    lines += _disturbed_section(results)
    if results["skipped"] or results["failures"]:
        lines += ["## Not measured", ""]
        lines += [f"- {k}: {v}" for k, v in results["skipped"].items()]
        lines += [f"- {k}: FAILED: {v.splitlines()[0]}" for k, v in results["failures"].items()]
        lines.append("")
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]
    return "\n".join(lines)


def _disturbed_section(results: Record) -> list[str]:
    """Phases that other jobs still disturbed after retries: their throughput is suspect."""
    disturbed = [
        (s["id"], p)
        for s in results["systems"]
        for p in s.get("phases", [])
        if p.get("other_busy_cores", 0) > DISTURBED_CORES
    ]
    repeated = sum(
        len(p.get("discarded_attempts", []))
        for s in results["systems"]
        for p in s.get("phases", [])
    )
    lines = [
        "## Disturbed phases",
        "",
        f"{repeated} phase measurements were repeated because other jobs used more than "
        f"{DISTURBED_CORES} cores meanwhile. "
        + (
            "Still disturbed after that (read their throughput with care; heavy "
            "disturbance inflates CPU per request too):"
            if disturbed
            else "No kept phase was disturbed."
        ),
        "",
    ]
    lines += [
        f"- {sid}: batch {p['batch']} x {p['concurrency']}: other jobs used "
        f"{p['other_busy_cores']} cores"
        for sid, p in disturbed
    ]
    return [*lines, ""] if disturbed else lines


def _cpu(found: Record | None, process: str, key: str) -> float | None:
    return found[key].get(process) if found else None


def _latency(found: Record | None) -> str:
    if found is None:
        return "-"
    latency = found["latency_ms"]
    return f"{latency['p50']:.2f} / {latency['p90']:.2f} / {latency['p99']:.2f}"


def _profile_title(system: Record, prof: Record) -> str:
    return (
        f"Profile of the {prof['process']}: {system['id']}, batch {prof['batch']} x "
        f"{prof['concurrency']} connections"
    )


def _profile_section(system: Record, prof: Record) -> list[str]:
    lines = [
        f"## {_profile_title(system, prof)}",
        "",
        f"py-spy, {prof['seconds']} s at {prof['requests_per_second_while_profiled']:.0f} req/s, "
        f"{prof['samples']} samples; the {prof['process']} was busy "
        f"{100 * prof['busy_share_of_one_core']:.0f}% of one core. Self time (where the CPU "
        "actually was) by function, and total time (including callees):",
        "",
    ]
    lines += _table(
        ["function", "file", "self %", "total %"],
        (
            [f"`{f['function']}`", f["file"], f"{f['self_pct']:.1f}", f"{f['total_pct']:.1f}"]
            for f in prof["top_self"]
        ),
        "---",
    )
    if prof["ours_total"]:
        lines += ["This repo's functions, total time (their callees included):", ""]
        lines += _table(
            ["function", "file", "total %"],
            (
                [f"`{f['function']}`", f["file"], f"{f['total_pct']:.1f}"]
                for f in prof["ours_total"]
            ),
            "---",
        )
    lines += ["Self time by component:", ""]
    lines += _table(
        ["component", "self %"],
        ([c["component"], f"{c['self_pct']:.1f}"] for c in prof["self_by_component"]),
        "---",
    )
    return lines


# --- plot ------------------------------------------------------------------------------------


def plot(results: Record, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import NullFormatter  # noqa: PLC0415

    systems = results["systems"]
    networked = [s for s in systems if s["role"] != "floor"]
    figure, axes = plt.subplots(2, 2, figsize=(15, 10))
    latency_axis, saturation_axis, batch_axis, cpu_axis = axes.flat

    for s in networked:
        levels = sorted((p["concurrency"], p["latency_ms"]) for p in s["phases"] if p["batch"] == 1)
        if levels:
            x = [c for c, _ in levels]
            line = latency_axis.plot(x, [lat["p50"] for _, lat in levels], "o-", label=s["id"])
            latency_axis.plot(x, [lat["p99"] for _, lat in levels], "x--",
                              color=line[0].get_color())  # fmt: skip
    latency_axis.set(xscale="log", yscale="log", xlabel="concurrent connections",
                     ylabel="latency ms (o p50, x p99)", title="Batch 1 latency")  # fmt: skip
    latency_axis.set_xticks([1, 8, 32], labels=["1", "8", "32"])
    latency_axis.legend(fontsize=7)

    def bars(axis: Any, values: list[tuple[Record, float | None]], title: str, unit: str) -> None:
        shown = [(s, v) for s, v in values if v]
        axis.barh(
            [s["id"] for s, _ in shown],
            [v for _, v in shown],
            color=[ROLE_COLOURS[s["role"]] for s, _ in shown],
        )
        axis.set(xscale="log", title=title, xlabel=unit)
        axis.xaxis.set_minor_formatter(NullFormatter())  # the log axis' minor labels overlap
        axis.invert_yaxis()
        axis.tick_params(axis="y", labelsize=7)
        for index, (_, value) in enumerate(shown):
            axis.annotate(f"{value:,.0f}", (value, index), fontsize=7, va="center")

    bars(saturation_axis, [(s, saturation(s)) for s in systems],
         "Batch 1 saturation throughput (colour: floor, predictor, chain, peer)",
         "requests/s (log)")  # fmt: skip
    bars(batch_axis, [(s, rows_per_second(s, 1000)) for s in systems],
         "Batch 1000 throughput", "rows/s (log)")  # fmt: skip

    # Coloured like the roles elsewhere: the transformer is the chain's own process.
    processes = {"transformer": "chain", "predictor": "predictor", "server": "peer"}
    bottom = np.zeros(len(networked))
    for process, role in processes.items():
        values = np.array([_cpu(phase(s, 1), process, "cpu_ms_per_request") or 0.0
                           for s in networked])  # fmt: skip
        cpu_axis.barh(
            [s["id"] for s in networked],
            values,
            left=bottom,
            label=process,
            color=ROLE_COLOURS[role],
        )
        bottom += values
    cpu_axis.set(title="Server CPU per request, batch 1 at saturation", xlabel="CPU ms / request")
    cpu_axis.invert_yaxis()
    cpu_axis.tick_params(axis="y", labelsize=7)
    cpu_axis.legend(fontsize=7)

    m = results["machine"]
    figure.suptitle(
        f"Serving benchmark ({results['mode']}): {m['cores']} cores shared by wrk and all "
        f"servers; load average before {m['load_average_before'][0]}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


README_BEGIN = "<!-- serving results: generated by bench/report.py, do not edit by hand -->"
README_END = "<!-- end of serving results -->"


def update_readme(results: Record, readme: Path) -> None:
    """Replace the generated block of bench/README.md with this run's verdicts and headline."""
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} lacks the generated-results markers")
    m = results["machine"]
    block = [
        README_BEGIN,
        "",
        f"Run of {results['started_at']} ({results['mode']}, {results['wall_seconds']:.0f} s) on "
        f"{m['cores']} cores shared by wrk and every server; {_noise(results)}. "
        "Full tables, profiles and versions: [results/serving.md](results/serving.md).",
        "",
    ]
    block += _verdict_table(results)
    block.append(README_END)
    readme.write_text(text[:begin] + "\n".join(block) + text[end + len(README_END) :])


def write(results: Record, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "serving.md").write_text(markdown(results))
    plot(results, directory / "serving.png")
