"""Kill a tiny sweep's confirm stage at varied moments and resume it, N times over: does every one resume?

Each round runs the suite's confirm sweep (tests/integration/test_sweep_faults.py: 3 search trials, the best 2
on 2 new seeds each) on a small synthetic dataset, SIGKILLs the driver at one or more moments of the confirm
stage (drawn from the round's seed: as the plan is written, as a resumed driver saves its searcher state, as
a confirm row is recorded; each after a random delay), resumes after each kill, and checks the sweep ends
with exactly its planned trials, chosen on the mean. Not part of the suite: it takes minutes of CPU.

    python tools/kill_loop.py                  # 20 rounds
    python tools/kill_loop.py -n 5 --load      # 5 rounds, with a busy loop on every core beside them

Prints one line per round (its seed and the moments killed at) and `k of N resumed`; exits 1 unless all did.
A round whose sweep ended before a kill could land, or whose driver could not start Ray at all (ray.init waits
30 s for its raylet, which a machine under heavy load can exceed), is counted apart: it says nothing about resuming.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOMENTS = ("plan", "save", "row")
NO_RAY = "timed out during startup"  # ray.init's fixed 30 s wait for its own raylet, which a loaded machine can exceed


def busy() -> None:
    while True:
        pass


def moments(rng: random.Random) -> list[str]:
    """One to three of the confirm stage's kill moments, in the order a sweep reaches them."""
    chosen = [kind for kind in MOMENTS if rng.random() < 0.6]
    return chosen or [rng.choice(MOMENTS)]


def prepared_data(folder: Path):
    from hamtune.data.prepare import load_prepared, prepare
    from hamtune.data.synth import synthesize_release

    release = synthesize_release(folder / "ham", n=400, seed=1, image_size=(160, 120), progress=False)
    return load_prepared(prepare(release, size=28, progress=False))


def run_rounds(rounds: int, seed: int, work: Path, keep: bool) -> tuple[int, int, int]:
    """(resumed, ended before a kill, lost to Ray not starting) over `rounds` rounds; failures are printed with their seed."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]
    import test_sweep_faults as faults

    prepared = prepared_data(work / "release")
    resumed = not_killed = no_ray = 0
    for index in range(rounds):
        rng = random.Random(seed + index)
        root = work / f"round-{index + 1}"
        root.mkdir()
        space = faults.write_space(root / "kills.yaml", prepared, name="kills", **faults.CONFIRM)
        started = time.perf_counter()
        try:
            killed, _ = faults.kill_and_resume(space, root, moments(rng), rng)
            faults.assert_confirmed(root / "kills")
        except AssertionError as exc:
            message = str(exc)
            if NO_RAY in message:
                no_ray += 1
                print(
                    f"round {index + 1}/{rounds} (seed {seed + index}): a driver could not start Ray ({NO_RAY}: the "
                    "machine is overloaded), so the round says nothing about resuming",
                    flush=True,
                )
            elif message.startswith("the sweep ended before"):
                not_killed += 1
                print(
                    f"round {index + 1}/{rounds} (seed {seed + index}): the sweep ended before a kill landed: {message[-1500:]}", flush=True
                )
            else:
                print(f"round {index + 1}/{rounds} (seed {seed + index}): NOT RESUMED: {str(exc)[-2000:]}", flush=True)
                keep_failed = root.with_name(root.name + "-failed")
                root.rename(keep_failed)
                print(f"  kept in {keep_failed}", flush=True)
            continue
        resumed += 1
        set_aside = sorted(path.name for path in (root / "kills" / "tune").glob("*.unrecorded"))
        print(
            f"round {index + 1}/{rounds} (seed {seed + index}): resumed after kills at {killed} in "
            f"{time.perf_counter() - started:.0f} s; unrecorded state set aside: {set_aside or 'none'}",
            flush=True,
        )
        if not keep:
            shutil.rmtree(root)
    return resumed, not_killed, no_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rounds", type=int, default=20, help="rounds of kill and resume (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="the first round's seed; round i uses seed + i")
    parser.add_argument("--load", action="store_true", help="run a busy loop on every core beside the sweeps")
    parser.add_argument("--keep", action="store_true", help="keep every round's folder (failed rounds are always kept)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="hamtune-kill-loop-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")  # trust records of these sweeps stay in the work folder
    os.environ["HAMTUNE_CACHE"] = str(work / "cache")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # the drivers run this hamtune
    load = [multiprocessing.Process(target=busy, daemon=True) for _ in range(os.cpu_count() or 1)] if args.load else []
    for process in load:
        process.start()
    print(f"{args.rounds} rounds from seed {args.seed} in {work}" + (f", {len(load)} busy loops beside them" if load else ""), flush=True)
    try:
        resumed, not_killed, no_ray = run_rounds(args.rounds, args.seed, work, args.keep)
    finally:
        for process in load:
            process.terminate()
            process.join()
    apart = [f"{not_killed} ended before a kill landed"] * bool(not_killed) + [f"{no_ray} lost to Ray not starting"] * bool(no_ray)
    print(f"{resumed} of {args.rounds} resumed" + (f" ({'; '.join(apart)})" if apart else ""))
    if resumed == args.rounds and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if resumed == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
