"""What every benchmark reports: ``Result`` rows, wall time, peak memory.

A result is a measured value against a target (``target_max``: the value must not exceed it,
``target_min``: it must reach it; neither: information only). Peak memory is the growth of the
process's peak resident set (VmHWM, reset through ``/proc/self/clear_refs``) on CPU, and the CUDA
allocator's peak on GPU, in MB (2^20 bytes).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch


@dataclass
class Result:
    """One row of the benchmark table: ``value`` in ``unit`` against a target; ``seconds`` and
    ``peak_mb`` of the measured step where they apply; ``note`` how it was measured."""

    name: str
    value: float | None
    unit: str
    target_max: float | None = None
    target_min: float | None = None
    seconds: float | None = None
    peak_mb: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        if self.target_max is not None:
            return f"≤ {self.target_max:g}"
        if self.target_min is not None:
            return f"≥ {self.target_min:g}"
        return "—"

    @property
    def ratio(self) -> float | None:
        """value / target (≤ 1 passes a maximum), or value / target for a minimum (≥ 1 passes)."""
        target = self.target_max if self.target_max is not None else self.target_min
        if self.value is None or target in (None, 0):
            return None
        return self.value / target

    @property
    def status(self) -> str:
        if self.value is None:
            return "skipped"
        if self.target_max is not None:
            return "pass" if self.value <= self.target_max else "miss"
        if self.target_min is not None:
            return "pass" if self.value >= self.target_min else "miss"
        return "info"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target, "ratio": self.ratio, "status": self.status}


def sync(device: str | torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that wall time covers it."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str | torch.device = "cpu") -> tuple[Any, float]:
    """``(fn(), seconds)`` with the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


class Peak:
    """The peak memory growth of a ``peak_memory`` block, MB (``mb`` is set when the block ends)."""

    mb: float = float("nan")


@contextmanager
def peak_memory(device: str | torch.device = "cpu") -> Iterator[Peak]:
    """Measure the block's peak memory above what was in use when it began (module docstring)."""
    peak = Peak()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        yield peak
        torch.cuda.synchronize()
        peak.mb = (torch.cuda.max_memory_allocated() - base) / 2**20
        return
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    base = _status_kib("VmRSS")
    yield peak
    peak.mb = (_status_kib("VmHWM") - base) / 1024
