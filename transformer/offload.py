"""Batch work off the event loop.

A large batch is decoded, transformed and encoded on a worker thread, so readiness and liveness
probes never queue behind it. A small one stays on the loop: at batch 1 the hand-off to a thread
costs about as much as the work itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

OFFLOAD_MIN_ROWS = 100
# Before a body is decoded its row count is unknown; v2 JSON runs near 170 bytes a row.
OFFLOAD_MIN_BODY_BYTES = 16 * 1024


def large_batch(rows: int) -> bool:
    return rows >= OFFLOAD_MIN_ROWS


def large_body(size: int) -> bool:
    return size >= OFFLOAD_MIN_BODY_BYTES


async def run(work: Callable[[], T], *, large: bool) -> T:
    """work() on a worker thread when the batch is large, else right here on the loop."""
    if large:
        return await asyncio.to_thread(work)
    return work()
