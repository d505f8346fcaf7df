"""CPU time and peak memory of server process trees, read from /proc (Linux), never estimated.

A server may fork workers (uvicorn, MLServer), so every number is summed over the process and
all its descendants. CPU time of a descendant that exited is still counted: the kernel adds it
to its parent's cutime/cstime once the parent reaps it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessStat:
    pid: int
    parent: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def _read_stat(pid: int) -> ProcessStat | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name sits in parentheses and may itself contain spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ProcessStat(pid, int(fields[1]), utime + stime + cutime + cstime)


def _all_stats() -> dict[int, ProcessStat]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _read_stat(int(entry.name))) is not None:
            stats[stat.pid] = stat
    return stats


def process_tree(root: int) -> list[ProcessStat]:
    """The root process and all its live descendants."""
    stats = _all_stats()
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.parent, []).append(stat.pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(stats[pid])
        pending.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    return sum(s.cpu_ticks for s in process_tree(root)) / CLOCK_TICKS


def tree_peak_rss_bytes(root: int) -> int:
    """Sum of VmHWM (peak resident set) over the tree: an upper bound if peaks did not coincide."""
    total = 0
    for stat in process_tree(root):
        try:
            status = (PROC / str(stat.pid) / "status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, all processes) since boot."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def cpu_model() -> str:
    for line in (PROC / "cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def memory_gib() -> float:
    for line in (PROC / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return 0.0
