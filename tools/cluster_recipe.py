"""Run docs/cluster.md's recipe line by line, as a new user would on a fresh machine, and check rc 0 at every step.

On localhost: an empty HOME (no token, no ~/.ray), the head and the worker in private temp dirs and on free ports
(other Ray instances on the host are left alone), a tiny space on a small synthetic dataset in place of the full
HAM10000 search. The recipe's own last lines end the cluster; whatever is left (a failed step) is ended here too.
Needs `hamtune[cluster]` (ray[default]) installed in the running Python's environment.

    python tools/cluster_recipe.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cluster.md"
TINY = {
    "name": "ham10000",
    "objective": {"metric": "val_auroc", "mode": "max"},
    "sampler": {"name": "tpe", "n_startup_trials": 2},
    "scheduler": "none",
    "num_samples": 4,
    "max_epochs": 2,
    "resources": {"cpus": 1},
    "fixed": {"image_size": 28, "batch_size": 64, "cnn_channels": 8, "mlp_width": 64},
    "params": {"kind": {"choice": ["ae", "vae"]}, "arch": {"choice": ["mlp", "cnn"]}, "lr": {"float": [1e-3, 5e-3], "log": True}},
}


def recipe_lines(doc: Path) -> list[str]:
    """The commands of the ```bash block under '## The recipe', continuation lines joined, comments dropped."""
    text = doc.read_text()
    section = text.split("## The recipe", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def localised(line: str, places: dict[str, str]) -> str:
    """The line with the recipe's placeholders (head address, ports, temp dirs, paths) made local."""
    for word, value in places.items():
        line = re.sub(rf"(?<![\w.]){re.escape(word)}(?![\w])", value, line)
    for variable in ("SPACE", "DATA", "SHARED"):
        line = re.sub(rf"\b{variable}=\S+", f"{variable}={shlex.quote(places['$' + variable])}", line)
    return line


def script(lines: list[str]) -> str:
    """A bash script that echoes each step, runs it, and stops at the first non-zero exit naming the step."""
    out = ["set -u"]
    for number, line in enumerate(lines, 1):
        out.append(f"echo {shlex.quote(f'+ [{number}] {line}')}")
        out.append(line)
        out.append(f'rc=$?; if [ $rc -ne 0 ]; then echo "step {number} failed (rc $rc): "{shlex.quote(line)} >&2; exit 100; fi')
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (HOME, data, results) for a look")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from hamtune.sweep.tune.cluster import cluster_processes, stop_cluster

    scratch = Path(tempfile.mkdtemp(prefix="hamtune-recipe-"))
    temp_root = f"/tmp/htr-{secrets.token_hex(3)}"  # short: Ray's socket paths must stay under 108 bytes
    places = {
        "HEAD_IP": "127.0.0.1",
        "6379": str(free_port()),
        "8265": str(free_port()),
        "10001": str(free_port()),
        "/tmp/ray-hamtune": temp_root,
        "$SPACE": str(scratch / "ham10000.yaml"),
        "$DATA": str(scratch / "data"),
        "$SHARED": str(scratch / "shared"),
    }
    temp_dirs = [Path(temp_root), Path(f"{temp_root}-worker")]
    home = scratch / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "TUNE_"))}
    bin_dir = str(Path(sys.executable).parent)
    env.update(HOME=str(home), PATH=f"{bin_dir}:{env.get('PATH', '')}", PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    started = time.perf_counter()
    try:
        synth = ["data", "synth", str(scratch / "data"), "--n", "400", "--image-size", "160x120", "--workers", "1"]
        subprocess.run([sys.executable, "-m", "hamtune", *synth], env=env, check=True, capture_output=True)
        (scratch / "ham10000.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
        lines = [localised(line, places) for line in recipe_lines(DOC)]
        (scratch / "recipe.sh").write_text(script(lines))
        done = subprocess.run(["bash", str(scratch / "recipe.sh")], env=env, cwd=scratch, timeout=1500)
        left = [p for d in temp_dirs for p in cluster_processes(d)]
        if done.returncode == 0 and left:
            print(f"the recipe ended, but {len(left)} process(es) of its cluster are still running", file=sys.stderr)
            return 1
        print(f"recipe {'passed' if done.returncode == 0 else 'FAILED'}: {len(lines)} steps, {time.perf_counter() - started:.0f} s")
        return 0 if done.returncode == 0 else 1
    finally:
        for temp_dir in temp_dirs:
            if temp_dir.is_dir() and any(temp_dir.glob("session_*")):
                stop_cluster(temp_dir, grace_s=5)
            shutil.rmtree(temp_dir, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
