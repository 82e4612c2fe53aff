"""Does hamtune still work with the newest releases its ranges allow? Run it before users find out.

Builds a scratch venv, installs the package with CI's extras and NO lock (only the hand pins of
constraints.in: the CPU torch wheel and the linter), lists every package whose newest allowed release differs
from constraints.txt, and runs the fast tests plus the ones that caught past breakages (every sampler through
Tune's pickling, a multi-objective sweep). Exit status: pytest's. Record the last result in the README's
Development section; if a newer release breaks hamtune and cannot be worked around, cap its range in
pyproject.toml with a comment naming the failure.

    python tools/check_latest.py            # fast tests (a few minutes)
    python tools/check_latest.py --all      # the whole suite
    python tools/check_latest.py --venv DIR # keep the venv in DIR (reused if it exists)
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from lock import EXTRAS  # noqa: E402

CANARIES = ["tests/unit/sweep/test_samplers.py", "tests/integration/test_sweep.py::test_multi_objective_space_runs"]


def pins(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", text, re.MULTILINE)}


def run(venv: Path, everything: bool) -> int:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--upgrade",
            "--upgrade-strategy",
            "eager",
            "-c",
            str(ROOT / "constraints.in"),
            "-e",
            f"{ROOT}[{EXTRAS}]",
        ],
        check=True,
    )
    installed = pins(
        subprocess.run([str(python), "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True).stdout
    )
    locked = pins((ROOT / "constraints.txt").read_text())
    newer = {
        name: (locked.get(name, "-"), version.split("+")[0])
        for name, version in installed.items()
        if locked.get(name) != version.split("+")[0]
    }
    print(f"{len(newer)} package(s) newer than constraints.txt:" if newer else "the newest allowed versions are the locked ones")
    for name, (was, now) in sorted(newer.items()):
        print(f"  {name} {was} -> {now}")
    runs = [[]] if everything else [["-m", "not slow"], CANARIES]
    codes = [
        subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=ROOT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        ).returncode
        for tests in runs
    ]
    code = max(codes)
    verdict = "passed" if code == 0 else f"FAILED (pytest exit {codes})"
    print(
        f"check_latest {datetime.date.today()}: {'whole suite' if everything else 'fast tests + canaries'} {verdict} "
        f"with the newest allowed versions ({len(newer)} newer than the lock)"
    )
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="run the whole suite, not only the fast tests")
    parser.add_argument("--venv", type=Path, help="build (or reuse) the venv here instead of a temporary folder")
    args = parser.parse_args()
    if args.venv:
        return run(args.venv.resolve(), args.all)
    with tempfile.TemporaryDirectory(prefix="hamtune-latest-") as scratch:
        return run(Path(scratch) / "venv", args.all)


if __name__ == "__main__":
    sys.exit(main())
