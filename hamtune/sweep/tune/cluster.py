"""One Ray cluster among several on a host: end exactly its processes; and check that every node runs the
driver's hamtune and torch.

Ray 2.60's `ray stop` ends every Ray process of the user on the machine (other people's sweeps, a
notebook's local Ray); it takes no address. A node started with its own `--temp-dir` names that folder
in the command line of its raylet, GCS, dashboard and monitors; their children (workers, agents) are
found through the process tree. That is what `hamtune cluster stop TEMP_DIR` ends.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from hamtune.errors import HamtuneError, first_line
from hamtune.sweep.cluster import release

log = logging.getLogger(__name__)

GRACE_S = 10.0
CHECK_TIMEOUT_S = 600.0  # a node's runtime_env (pip installs) is built before its first task answers


def _psutil():
    import ray  # noqa: F401  (puts Ray's own copy of psutil on the path, imported after it)

    return importlib.import_module("psutil")


def cluster_processes(temp_dir: Path) -> list:
    """The processes of the node(s) started with `--temp-dir=temp_dir`, and all their descendants; never this
    process or its parents (whose command lines may name the folder too)."""
    psutil = _psutil()
    me = psutil.Process()
    spared = {me.pid, *(p.pid for p in me.parents())}
    roots = {str(Path(temp_dir).absolute()), str(Path(temp_dir).resolve())}

    def names_it(word: str) -> bool:
        return any(word.endswith(f"={root}") or f"{root}/" in word for root in roots)

    owners = [
        p
        for p in psutil.process_iter(["pid", "cmdline"])
        if p.pid not in spared and any(names_it(word) for word in p.info["cmdline"] or [])
    ]
    found = {p.pid: p for p in owners}
    for process in owners:
        try:
            found.update({child.pid: child for child in process.children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
    return [p for pid, p in found.items() if pid not in spared]


def stop_cluster(temp_dir: Path, grace_s: float = GRACE_S) -> int:
    """SIGTERM the node's processes, SIGKILL what is left after `grace_s`; returns how many were ended.
    A folder that is not a Ray temp dir is refused, so a typo cannot end unrelated processes."""
    psutil = _psutil()
    temp_dir = Path(temp_dir)
    if not temp_dir.is_dir() or not any(temp_dir.glob("session_*")):
        raise HamtuneError(f"{temp_dir}: not a Ray temp dir (no session_* folder); pass the --temp-dir the nodes were started with")
    processes = cluster_processes(temp_dir)
    for process in processes:
        try:
            process.terminate()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    (temp_dir / "ray_current_cluster").unlink(missing_ok=True)
    log.debug("ended %d Ray process(es) of %s (%d needed SIGKILL)", len(processes), temp_dir, len(alive))
    return len(processes)


def check_node_versions(timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Every alive node imports the hamtune and torch (release) the driver runs, or the sweep stops here with one
    error naming the node: a trial on a node without hamtune or with other code fails late and obscurely. One
    tiny task pinned to each node (with the job's runtime_env, so a runtime_env that installs hamtune counts)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def installed() -> tuple[str, str]:  # nested: shipped by value, so a node without hamtune can still run it
        import torch

        import hamtune

        return hamtune.__version__, torch.__version__

    mine = installed()
    versions = ray.remote(num_cpus=0, max_retries=0)(installed)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    asked = {versions.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(): n for n in nodes}
    _, late = ray.wait(list(asked), num_returns=len(asked), timeout=timeout_s)
    for ref in late:
        ray.cancel(ref, force=True)
    problems = []
    for ref, node in asked.items():
        where = f"node {node['NodeID'][:12]} ({node.get('NodeManagerAddress', '?')})"
        if ref in late:
            problems.append(f"{where} did not answer within {timeout_s:g} s (is its runtime_env still installing?)")
            continue
        try:
            theirs = ray.get(ref)
        except Exception as exc:  # whatever the node raised (ModuleNotFoundError, a broken runtime_env) is the message
            problems.append(f"{where} cannot import hamtune and torch ({first_line(getattr(exc, 'cause', None) or exc)})")
            continue
        if theirs[0] != mine[0] or release(theirs[1]) != release(mine[1]):
            problems.append(f"{where} has hamtune {theirs[0]}, torch {theirs[1]}")
    if problems:
        raise HamtuneError(
            f"{problems[0]}{f' (and {len(problems) - 1} more node(s))' if len(problems) > 1 else ''}, but the driver "
            f"has hamtune {mine[0]}, torch {mine[1]}: install the same versions on every node, or pass them with "
            "--runtime-env / a runtime_env: key (docs/cluster.md)"
        )
    log.debug("%d node(s) import hamtune %s and torch %s", len(nodes), *mine)
