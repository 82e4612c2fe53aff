"""What every benchmark shares: the machine's description, interleaved timing, ratios, JSON and a table.

These machines are shared and noisy: absolute times drift with other people's load, ratios of
alternatives measured side by side (A, B, A, B...) hold. So every figure here is a ratio of
interleaved repeats, and every result file records the load it was measured under.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUICK_RESULTS = RESULTS / "quick"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> dict:
    """The load average and `uptime` line: a shared machine's numbers mean little without them."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uptime = None
    return {"loadavg": list(os.getloadavg()), "uptime": uptime, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def machine(device: str = "cpu") -> dict:
    """CPU model, cores, torch version and the device the figures were measured on."""
    import torch

    from hamtune.results.store import git_commit

    name = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else device
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "device_name": name,
        "gpu_available": bool(torch.cuda.is_available()),
        "git_commit": git_commit(),
    }


def sync(device) -> None:
    """Wait for a CUDA device's queued work, so a timer measures it; nothing to wait for on a CPU."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def interleaved(alternatives: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run the alternatives in turn (A, B, A, B...) `repeats` times after `warmup` unrecorded rounds.

    Each callable returns the seconds it measured itself, so set-up can stay outside the timing.
    """
    times: dict[str, list[float]] = {name: [] for name in alternatives}
    for round_ in range(warmup + repeats):
        for name, measure in alternatives.items():
            seconds = measure()
            if round_ >= warmup:
                times[name].append(seconds)
    return times


def ratio(slow: list[float], fast: list[float]) -> dict:
    """slow/fast per interleaved pair: the median is the figure, the range shows the noise."""
    pairs = [s / f for s, f in zip(slow, fast) if f > 0]
    return {"median": statistics.median(pairs), "min": min(pairs), "max": max(pairs), "pairs": pairs}


def median(values: list[float]) -> float:
    return statistics.median(values)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script works (the tests call it)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for <name>.json (default benchmarks/results, or benchmarks/results/quick with --quick)",
    )
    return parser


def write(name: str, payload: dict, out: Path | None, quick: bool) -> Path:
    folder = Path(out) if out else (QUICK_RESULTS if quick else RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    return path


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain-text table of rows (dicts) with (header, key) columns; floats to 3 significant digits."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return "" if value is None else str(value)

    body = [[cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, (h, _) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (h, _), w in zip(columns, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(lines)


def header(name: str, info: dict, started: dict) -> str:
    return (
        f"{name}: {info['cpu']}, {info['usable_cores']} cores, torch {info['torch']}, device {info['device_name']}\n"
        f"load at start: {started['uptime']}"
    )


def command(script: str, argv: list[str]) -> str:
    """The exact command line that produced a result file."""
    return " ".join(["python", f"benchmarks/{Path(script).name}", *argv])


def synthetic_release(n: int, image_size: tuple[int, int], seed: int = 0) -> Path:
    """A synthetic release-layout dataset under the hamtune cache (`--data synthetic:...`), made once."""
    from hamtune.data.prepare import synthetic_source

    width, height = image_size
    return synthetic_source(f"synthetic:n={n},seed={seed},size={width}x{height}", progress=False)


def synthetic_prepared(n: int, size: int, image_size: tuple[int, int] = (160, 120)):
    """That dataset prepared at `size` px (cached): the input of the training and sweep benchmarks."""
    from hamtune.data.prepare import load_prepared, prepare

    return load_prepared(prepare(synthetic_release(n, image_size), size=size, progress=False))


def real_or_quick_data(args: argparse.Namespace) -> str:
    """The benchmark's data: --data (the prepared real images), or with --quick a synthetic 28 px cache."""
    if args.quick:
        return args.data or str(synthetic_prepared(120, 28).path)
    if not args.data:
        raise SystemExit("--data: give the prepared real images (hamtune data prepare ../shared/data/ham10000_real --size 64)")
    return args.data
