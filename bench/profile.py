"""A py-spy profile of one server process while load runs, reduced to its top frames.

py-spy samples the live process from outside (no instrumentation, no restart), so the
profile shows the process as measured. Only samples where a thread was running are kept
(py-spy drops idle ones), so percentages are shares of the process's busy time.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLES_PER_SECOND = 100
TOP_FRAMES = 15
ENTRY_POINT_SHARE = 0.99
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_SITE_PACKAGES = re.compile(r".*/site-packages/")
_STDLIB = re.compile(r".*/lib/python3\.\d+/")
REPO_ROOT = Path(__file__).resolve().parent.parent


def short_path(path: str) -> str:
    """site-packages/uvicorn/x.py -> uvicorn/x.py; stdlib -> stdlib/asyncio/x.py."""
    if "/site-packages/" in path:
        return _SITE_PACKAGES.sub("", path)
    if path.startswith(str(REPO_ROOT) + "/"):
        return path[len(str(REPO_ROOT)) + 1 :]
    if _STDLIB.match(path):
        return "stdlib/" + _STDLIB.sub("", path)
    return path


def is_ours(path: str) -> bool:
    """This repo's code, not the libraries installed in its .venv."""
    return path.startswith(f"{REPO_ROOT}/") and "/site-packages/" not in path


def component(path: str) -> str:
    """The package a frame belongs to: ours (transformer/, model/), a library, or stdlib."""
    short = short_path(path)
    top = short.split("/", 1)[0]
    if short.startswith("stdlib/"):
        return "stdlib " + short.split("/")[1].removesuffix(".py")
    if short.startswith("<frozen "):  # os, posixpath, importlib: stdlib modules frozen in
        return "stdlib " + short.removeprefix("<frozen ").removesuffix(">")
    if is_ours(path):
        return f"{top} (this repo)"
    if short.startswith("/"):  # neither a venv nor this repo: name it by its directory
        return Path(short).parent.name
    return top.removesuffix(".py")


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    file: str  # shortened for display
    component: str
    ours: bool


def _parse_frame(frame: str) -> Frame:
    match = _FRAME.match(frame)
    if match is None:
        return Frame(frame, "", "unknown", ours=False)
    path = match["file"]
    return Frame(match["function"], short_path(path), component(path), is_ours(path))


def summarize(raw: str, duration_seconds: float, top: int = TOP_FRAMES) -> dict[str, Any]:
    """Self and total shares per function, and self shares per component, from py-spy's
    raw (collapsed-stack) output: one ``frame;frame;... count`` line per distinct stack."""
    self_samples: Counter[Frame] = Counter()
    total_samples: Counter[Frame] = Counter()
    by_component: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse_frame(f) for f in stack.split(";")]
        samples += count
        self_samples[frames[-1]] += count
        for frame in set(frames):
            total_samples[frame] += count
        by_component[frames[-1].component] += count

    def share(count: int) -> float:
        return round(100 * count / samples, 1) if samples else 0.0

    return {
        "samples": samples,
        # Busy share of one core: samples over what a always-running thread would give.
        "busy_share_of_one_core": round(samples / (SAMPLES_PER_SECOND * duration_seconds), 2),
        "top_self": [
            {
                "function": frame.function,
                "file": frame.file,
                "self_pct": share(count),
                "total_pct": share(total_samples[frame]),
            }
            for frame, count in self_samples.most_common(top)
        ],
        # This repo's functions with their callees: the request's stages as the code names them
        # (entry points, on (nearly) every stack, left out).
        "ours_total": [
            {"function": frame.function, "file": frame.file, "total_pct": share(count)}
            for frame, count in total_samples.most_common()
            if frame.ours and count < ENTRY_POINT_SHARE * samples
        ][:top],
        "self_by_component": [
            {"component": name, "self_pct": share(count)}
            for name, count in by_component.most_common(top)
        ],
    }


def record_during(
    py_spy: str, pid: int, seconds: float, output: Path, load: Callable[[], object]
) -> dict[str, Any]:
    """Record ``pid`` for ``seconds`` while ``load()`` runs (it must outlast the recording)."""
    recorder = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", str(SAMPLES_PER_SECOND), "--format", "raw", "--nolineno", "--full-filenames",
         "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    load()
    _, stderr = recorder.communicate()
    if recorder.returncode != 0 or not output.exists():
        print(f"py-spy failed: {stderr.decode(errors='replace')}", file=sys.stderr)
        raise RuntimeError(f"py-spy record failed with exit code {recorder.returncode}")
    return summarize(output.read_text(), seconds)
