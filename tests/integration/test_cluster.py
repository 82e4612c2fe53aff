"""A real two-node Ray cluster on localhost (two `ray start` processes, token authentication on):
`hamtune sweep --address` runs trials on both nodes, and survives losing one of them."""

from __future__ import annotations

import json
import os
import secrets
import shutil
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
from hamtune.sweep.tune.cluster import cluster_processes

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
    """A head and worker nodes, each a `ray start` in its own temp dir, sharing a private token; ended by
    `hamtune cluster stop` per temp dir, which touches no other Ray on the machine (`ray stop` would)."""

    def __init__(self, root: Path):
        self.root = root
        self.head_dir = Path(f"/tmp/htc-{secrets.token_hex(3)}")  # short: Ray's socket paths must stay under 108 bytes
        self.worker_dirs: list[Path] = []
        token = root / "token"
        token.write_text(secrets.token_hex(32))
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0",
            # notice a lost node in seconds rather than Ray's default half minute
            "RAY_health_check_period_ms": "500",
            "RAY_health_check_failure_threshold": "4",
        }
        self.address = f"127.0.0.1:{free_port()}"

    def ray(self, *args: str) -> None:
        done = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self, head_cpus: int = 1, workers: int = 1) -> None:
        from ray._private.utils import get_ray_client_dependency_error

        port = self.address.split(":")[1]
        # a head with ray[client] installed serves it on port 10001 unless told: a free port, not another head's
        client = [] if get_ray_client_dependency_error() else [f"--ray-client-server-port={free_port()}"]
        self.ray(
            "start",
            "--head",
            f"--port={port}",
            f"--num-cpus={head_cpus}",
            f"--temp-dir={self.head_dir}",
            *client,
            "--include-dashboard=false",
            "--dashboard-host=127.0.0.1",
            "--disable-usage-stats",
        )
        for _ in range(workers):
            self.add_node(1)

    def add_node(self, cpus: int, python_path: Path | None = None) -> None:
        """A worker node; `python_path` first on its workers' import path (another install of a package)."""
        self.worker_dirs.append(Path(f"{self.head_dir}-w{len(self.worker_dirs)}"))
        args = ["start", f"--address={self.address}", f"--num-cpus={cpus}", f"--temp-dir={self.worker_dirs[-1]}", "--disable-usage-stats"]
        env = {**self.env, "PYTHONPATH": f"{python_path}:{self.env.get('PYTHONPATH', '')}"} if python_path else self.env
        done = subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    def temp_dirs(self) -> list[Path]:
        return [*self.worker_dirs, self.head_dir]

    def stop(self) -> None:
        from hamtune.sweep.tune.cluster import stop_cluster

        for temp_dir in self.temp_dirs():
            if temp_dir.is_dir() and any(temp_dir.glob("session_*")):
                stop_cluster(temp_dir, grace_s=3)
            shutil.rmtree(temp_dir, ignore_errors=True)


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
    log = tmp_path / "driver.log"  # trials' output comes to the driver on a cluster: a pipe read only at the end could fill up
    driver = subprocess.Popen(command, env=cluster.env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.time() + 240, False
    while not killed and time.time() < deadline and driver.poll() is None:
        for result in (tmp_path / "lose" / "tune").glob("*/result.json"):
            if worker in result.read_text():
                for pid in own_processes(f"raylet.*{worker}"):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
        time.sleep(0.2)
    assert killed, "no trial ran on the worker node"
    driver.wait(timeout=600)
    output = log.read_text()
    assert driver.returncode == 0, output
    trials, epochs, _ = load_results(tmp_path / "lose")
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    assert (epochs.groupby("trial_id").size() == 6).all()
    assert "retrying from its last checkpoint" in output
    assert head in set(trials["node_id"])


def ran_on(experiment: Path, node: str) -> bool:
    """Whether a trial has reported from `node`: Tune's result.json lines, the whole ones (the last may be half written)."""
    for result in experiment.glob("*/result.json"):
        for line in result.read_text().split("\n")[:-1]:
            if line.strip() and json.loads(line).get("node_id") == node:
                return True
    return False


def test_a_node_with_another_hamtune_is_named_before_the_sweep_and_a_runtime_env_reaches_every_node(tmp_path, prepared):
    """The worker node's Python starts with another hamtune imported (its site does it, unless the process's environment
    says OTHER_HAMTUNE=0): the sweep stops before any trial, naming that node; a --runtime-env whose env_vars reach the
    workers of every node clears it."""
    other = tmp_path / "other"
    (other / "hamtune").mkdir(parents=True)
    (other / "hamtune" / "__init__.py").write_text('__version__ = "0.0.1-other"\n')
    (other / "sitecustomize.py").write_text(
        "import os, sys\nif os.environ.get('OTHER_HAMTUNE') != '0':\n    sys.path.insert(0, os.path.dirname(__file__))\n    import hamtune\n"
    )
    cluster = LocalCluster(tmp_path)
    try:
        cluster.start(head_cpus=1, workers=0)
        cluster.add_node(1, python_path=other)
        worker = node_ids(cluster)[1]
        space = space_file(tmp_path / "versions.yaml", prepared, name="versions", num_samples=2, max_epochs=1)
        command = [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(tmp_path), "--address", cluster.address]
        refused = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"node {worker[:12]}" in refused.stderr and "hamtune 0.0.1-other" in refused.stderr, refused.stderr
        assert not (tmp_path / "versions" / "trials.parquet").exists()
        cleared = json.dumps({"env_vars": {"OTHER_HAMTUNE": "0"}})
        done = subprocess.run(
            command + ["--name", "cleared", "--runtime-env", cleared], env=cluster.env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout + done.stderr
        trials, _, _ = load_results(tmp_path / "cleared")
        assert len(trials) == 2 and set(trials["status"]) == {"completed"}
    finally:
        cluster.stop()


def test_a_sweep_grows_with_the_cluster_resumes_on_it_after_its_driver_is_killed_and_only_that_cluster_is_ended(tmp_path, prepared):
    """A driver without the cluster's token is refused in one line. With it, a sweep started on a 2-CPU head runs trials
    on a second 2-CPU node that joins mid-sweep (Tune kept trials pending for it; a reused trial process on the head
    took them all before); its driver, killed, resumes on both nodes to exactly its trials; ending the cluster ends
    only its own processes."""
    cluster = LocalCluster(tmp_path)
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", f"{cluster.head_dir}-other/session_x"])
    driver = None
    try:
        cluster.start(head_cpus=2, workers=0)
        space = space_file(tmp_path / "grow.yaml", prepared, name="grow", num_samples=6, max_epochs=12)  # trials long next to a start
        command = [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(tmp_path), "--address", cluster.address]
        without_token = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
        refused = subprocess.run(command + ["--name", "refused"], env=without_token, capture_output=True, text=True, timeout=180)
        assert refused.returncode == 1 and "token authentication" in refused.stderr, refused.stdout + refused.stderr
        experiment = tmp_path / "grow" / "tune"
        output = tmp_path / "driver.log"  # a file, not a pipe nobody reads while the driver runs (it would block on a full pipe)
        driver = subprocess.Popen(command, env=cluster.env, stdout=output.open("w"), stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 480
        while not (experiment / "tuner.pkl").exists() and driver.poll() is None and time.time() < deadline:
            time.sleep(0.2)  # the Tuner is built (the cluster then had the head's 2 CPUs) before the node joins
        assert driver.poll() is None, output.read_text()[-3000:]
        cluster.add_node(2)
        joined = node_ids(cluster)[1]
        while not ran_on(experiment, joined) and driver.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert ran_on(experiment, joined), f"no trial ran on the node that joined mid-sweep: {output.read_text()[-2000:]}"
        assert driver.poll() is None, "the sweep ended before its driver could be killed"
        driver.kill()
        driver.wait(timeout=60)
        assert len(load_results(tmp_path / "grow")[0]) < 6
        resumed = subprocess.run(command + ["--resume"], env=cluster.env, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        trials, epochs, _ = load_results(tmp_path / "grow")
        assert len(trials) == 6 and set(trials["status"]) == {"completed"}
        assert (epochs.groupby("trial_id").size() == 12).all()
        assert trials["node_id"].nunique() == 2
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        cluster.stop()
        left = [p for d in cluster.temp_dirs() for p in cluster_processes(d)]
        alive = decoy.poll() is None
        decoy.kill()
    assert not left, "processes of the cluster are left"
    assert alive, "ending the cluster ended a process that only names a similar folder"
