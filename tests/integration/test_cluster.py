"""A real two-node Ray cluster on localhost (two `ray start` processes, token authentication on):
`hamtune sweep --address` runs trials on both nodes, and survives losing one of them."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SPACE

from hamtune.results.store import load_results

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_processes(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in out if int(pid) != os.getpid()]


class LocalCluster:
    """Head + one worker node, each a `ray start`, sharing a private token; stopped by killing only
    its own processes (`ray stop` would stop every Ray on the machine)."""

    def __init__(self, root: Path):
        self.root = root
        self.temp_dir = Path(f"/tmp/htc-{secrets.token_hex(3)}")
        token = root / "token"
        token.write_text(secrets.token_hex(32))
        self.env = {
            **os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0",
            # notice a lost node in seconds rather than Ray's default half minute
            "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
        }
        self.address = f"127.0.0.1:{free_port()}"

    def ray(self, *args: str) -> None:
        done = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        port = self.address.split(":")[1]
        self.ray("start", "--head", f"--port={port}", "--num-cpus=1", f"--temp-dir={self.temp_dir}",
                 "--include-dashboard=false", "--dashboard-host=127.0.0.1", "--disable-usage-stats")
        self.ray("start", f"--address={self.address}", "--num-cpus=1")

    def worker_raylets(self) -> list[int]:
        head_pids = set(own_processes(f"raylet.*--node_manager_port.*{self.temp_dir}"))
        return [pid for pid in head_pids if "--head" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]

    def stop(self) -> None:
        for pid in own_processes(str(self.temp_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        current = Path("/tmp/ray/ray_current_cluster")
        if current.exists() and self.address.split(":")[1] in current.read_text():
            current.unlink()


@pytest.fixture
def cluster(tmp_path):
    cluster = LocalCluster(tmp_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def space_file(path: Path, prepared, **changes) -> Path:
    raw = {**TINY_SPACE, "data": str(prepared.path), "num_samples": 4, "max_epochs": 3, **changes}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_sweep_on_a_two_node_cluster_uses_both_nodes(cluster, prepared, tmp_path):
    space = space_file(tmp_path / "cluster.yaml", prepared, name="cluster")
    command = [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(tmp_path), "--address", cluster.address]
    without_token = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    refused = subprocess.run(command + ["--name", "refused"], env=without_token, capture_output=True, text=True, timeout=180)
    assert refused.returncode == 1 and "token authentication" in refused.stderr
    done = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    trials, _, _ = load_results(tmp_path / "cluster")
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    assert trials["node_id"].nunique() == 2


def node_ids(cluster: LocalCluster) -> tuple[str, str]:
    """(head, worker) node ids, asked of the cluster itself."""
    script = (
        f"import ray; ray.init(address='{cluster.address}'); "
        "print(*[n['NodeID'] + ('-head' if 'node:__internal_head__' in n['Resources'] else '') "
        "for n in ray.nodes() if n['Alive']])"
    )
    out = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True, timeout=120)
    ids = out.stdout.split()
    head = next(i for i in ids if i.endswith("-head"))[: -len("-head")]
    return head, next(i for i in ids if not i.endswith("-head"))


def test_a_node_lost_mid_sweep_has_its_trials_rescheduled(cluster, prepared, tmp_path):
    head, worker = node_ids(cluster)
    space = space_file(tmp_path / "lose.yaml", prepared, name="lose", max_epochs=6, max_failures=3)
    command = [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(tmp_path), "--address", cluster.address]
    driver = subprocess.Popen(command, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.time() + 240, False
    while not killed and time.time() < deadline and driver.poll() is None:
        for result in (tmp_path / "lose" / "tune").glob("*/result.json"):
            if worker in result.read_text():
                for pid in own_processes(f"raylet.*{worker}"):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
        time.sleep(0.2)
    assert killed, "no trial ran on the worker node"
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output
    trials, epochs, _ = load_results(tmp_path / "lose")
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    assert (epochs.groupby("trial_id").size() == 6).all()
    assert "retrying from its last checkpoint" in output
    assert head in set(trials["node_id"])
