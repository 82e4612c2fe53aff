"""Resume only Tune state this user's hamtune wrote: Ray Tune restores a sweep by unpickling files.

`Tuner.restore` (Ray 2.60) unpickles `tuner.pkl`, the newest `experiment_state-*.json` (trial states
carry cloudpickled fields), `search_gen_state-*.json`, `searcher-state-*.pkl` and
`callback-states-*.pkl`, and the finished sweep's result grid unpickles each errored trial's
`error.pkl`. A file someone else put there would run code in the driver. So hamtune records the
sha256 of every such file when its own driver writes it, outside the results folder
(`$XDG_CONFIG_HOME/hamtune/trust/`, default `~/.config/hamtune/trust/`, keyed by the experiment
path), and `--resume` refuses a folder holding any such file whose digest it never recorded.

When digests are taken: `tuner.pkl` right after the Tuner writes it (once per sweep); the rest in
`TrustRecorder.get_state`, which Tune calls while it saves the experiment state, after it has written
the experiment and searcher state to its local staging folder and before it copies them to storage
(and once more at the end of the experiment, as a resumed sweep with nothing left to run saves its
state without a step).
So every version is recorded before Tune launches its copy to storage (but see below: a copy still running
from the save before may take it first). The copy to storage lags the staging
folder by any number of saves (Tune saves at every step, about ten a second while trials train), so each
file's versions are kept from the one the results folder holds now onwards, not a fixed number of them. The one gap: a driver killed in the
milliseconds between Tune writing its first `tuner.pkl` and hamtune recording (and keeping) it; that sweep
cannot be resumed and is started again.

Tune's copy to storage runs in the background while the next save rewrites the staging folder, so the results
folder can receive a version Tune has written but hamtune has not yet recorded (`get_state` runs after the
experiment and searcher state are written), or a torn (empty or cut) copy: the experiment state is rewritten in
place mid-copy, and a kill mid-copy leaves any file the copy had opened empty (`tuner.pkl` too, which a resumed
driver copies back at every save); a driver killed then leaves it behind. Neither is ever unpickled: each version hamtune records is
also kept, as recorded, in `tune/.hamtune-state/`, and `put_back_recorded_state`, before `verify`, sets any state
file whose digest was never recorded aside (renamed `*.unrecorded`) and puts the last recorded version in its
place. Torn, unrecorded and forged files are told apart by nothing but the record: none of them is loaded, so a
received folder still cannot run code, and the user's own killed sweep resumes from its last recorded save.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import posixpath
from pathlib import Path

from pyarrow import fs as pafs
from ray import tune

from hamtune.errors import HamtuneError
from hamtune.files import atomic_file, check_regular
from hamtune.results.layout import TUNER
from hamtune.sweep.tune.internals import tune_filesystem

log = logging.getLogger(__name__)

STATE_FILE = "experiment_state-*.json"
STATE_PATTERNS = (
    TUNER,
    STATE_FILE,
    "search_gen_state-*.json",
    "searcher-state-*.pkl",
    "callback-states-*.pkl",
    "basic-variant-state-*.json",
)
TRIAL_PATTERNS = ("error.pkl",)
KEPT = ".hamtune-state"  # beside Tune's files: the last recorded version of each state file (see the module docstring)
SET_ASIDE = ".unrecorded"  # suffix of a state file never recorded: Tune's patterns no longer match it
KEEP = 4096  # versions of each file remembered at most: those not yet copied to the experiment folder (see record)


def config_dir() -> Path:
    """hamtune's per-user configuration folder ($XDG_CONFIG_HOME/hamtune, default ~/.config/hamtune)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hamtune"


def record_path(fs_path: str) -> Path:
    key = hashlib.sha256(fs_path.rstrip("/").encode()).hexdigest()[:40]
    return config_dir() / "trust" / f"{key}.json"


def check_usable() -> None:
    """The trust folder can be created: checked before a new sweep writes anything, so that a sweep whose Tune
    state could never be recorded (and so never resumed) does not start."""
    folder = config_dir() / "trust"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HamtuneError(
            f"{folder}: cannot hold hamtune's records of Tune state ({exc.strerror}); set XDG_CONFIG_HOME "
            "to a folder you can write (nothing was started)"
        ) from None


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def state_digests(filesystem, root: str, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """sha256 of every file under `root` that Tune unpickles on restore, by its path relative to `root`."""
    found: dict[str, str] = {}
    try:
        entries = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    except OSError:
        return found
    for entry in entries:
        if entry.type == pafs.FileType.File and _matches(entry.base_name, names or STATE_PATTERNS):
            found[entry.base_name] = entry.path
        elif entry.type == pafs.FileType.Directory and names is None:
            for pattern in TRIAL_PATTERNS:
                path = posixpath.join(entry.path, pattern)
                if filesystem.get_file_info(path).type == pafs.FileType.File:
                    found[f"{entry.base_name}/{pattern}"] = path
    digests = {}
    for name, path in found.items():
        try:
            with filesystem.open_input_stream(path) as handle:
                digests[name] = hashlib.sha256(handle.readall()).hexdigest()
        except OSError:
            continue  # vanished between listing and reading (Tune replaced it): taken at the next save
    return digests


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise HamtuneError(f"{path}: unreadable trust record ({exc}); delete it and start the sweep again") from None
    return record if isinstance(record, dict) and isinstance(record.get("files"), dict) else None


def record(fs_path: str, filesystem, root: str, names: tuple[str, ...] | None = None, stored: dict[str, str] | None = None) -> None:
    """Remember the digests of Tune's state files found under `root` as written for experiment `fs_path`.
    `stored`: the digests of the versions the experiment folder holds now; versions older than those can no
    longer reach it (Tune's copies to storage only move forward) and are forgotten."""
    digests = state_digests(filesystem, root, names)
    path = record_path(fs_path)
    saved = _read_record(path) or {"experiment": fs_path, "files": {}}
    changed = False
    for name, digest in digests.items():
        known = saved["files"].setdefault(name, [])
        if digest not in known:
            known.append(digest)
            changed = True
        there = (stored or {}).get(name)
        if there in known and known.index(there) > 0:
            del known[: known.index(there)]
            changed = True
        if len(known) > KEEP:
            del known[:-KEEP]
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(saved))
            os.chmod(tmp, 0o600)


def record_tuner(experiment: str) -> None:
    """Record (and keep) the tuner.pkl a new Tuner has just written: a resumed driver downloads it to staging and copies
    it back at every save, so a kill mid-copy can tear it too."""
    filesystem, fs_path = tune_filesystem(experiment)
    record(fs_path, filesystem, fs_path, names=(TUNER,))
    if isinstance(filesystem, pafs.LocalFileSystem):
        keep_recorded_state(Path(fs_path), Path(fs_path), names=(TUNER,))


def verify(experiment: str) -> None:
    """Refuse, before anything is unpickled, a Tune folder holding state this user's hamtune did not write."""
    filesystem, fs_path = tune_filesystem(experiment)
    where = record_path(fs_path)
    saved = _read_record(where)
    advice = (
        "Ray Tune resumes by unpickling it, which runs any code it holds, so hamtune will not resume it; "
        "`hamtune report` reads the folder safely; to continue, run the sweep again without --resume under a new --name"
    )
    if saved is None:
        raise HamtuneError(f"{experiment}: not written by this user's hamtune (no record of its Tune state in {where}); {advice}")
    for name, digest in sorted(state_digests(filesystem, fs_path).items()):
        if digest not in saved["files"].get(name, []):
            raise HamtuneError(
                f"{experiment}/{name}: not written by this user's hamtune (its sha256 is not among those recorded in {where}); {advice}"
            )


class TrustRecorder(tune.Callback):
    """Records the digests of the state Tune saves, while it saves it (see the module docstring)."""

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self.trials = None

    def on_step_begin(self, iteration, trials, **info) -> None:
        self.trials = trials  # Tune's own list: trials it adds later in this step are in it at save time

    def get_state(self) -> None:
        self._record(getattr(self, "trials", None))
        return None

    def on_experiment_end(self, trials, **info) -> None:
        self._record(trials)  # a resumed sweep with nothing left to run saves its state without a step

    @staticmethod
    def _record(trials) -> None:
        if not trials:
            return
        storage = trials[0].storage
        try:
            stored = state_digests(storage.storage_filesystem, storage.experiment_fs_path)
            record(storage.experiment_fs_path, _local(), storage.experiment_driver_staging_path, stored=stored)
            if isinstance(storage.storage_filesystem, pafs.LocalFileSystem):
                keep_recorded_state(Path(storage.experiment_driver_staging_path), Path(storage.experiment_fs_path))
        except (OSError, HamtuneError) as exc:
            log.warning("could not record the digests of Tune's state (%s); --resume will refuse this sweep", exc)


def keep_recorded_state(staging: Path, experiment: Path, names: tuple[str, ...] = STATE_PATTERNS) -> None:
    """Copy the state files Tune just wrote to staging (and hamtune just recorded) beside the results, atomically."""
    for source in sorted(path for pattern in names for path in staging.glob(pattern)):
        target = experiment / KEPT / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as tmp:
            tmp.write_bytes(source.read_bytes())


def put_back_recorded_state(experiment: str) -> None:
    """Set aside every Tune state file in the results folder whose digest this user's hamtune never recorded (torn,
    written after the last record, or forged: never read as anything but bytes) and put the last recorded version
    kept in `.hamtune-state/` in its place. A file with no recorded version kept, and a folder with no record, are
    left as they are, for `verify` to refuse."""
    filesystem, fs_path = tune_filesystem(experiment)
    saved = _read_record(record_path(fs_path))
    if saved is None or not isinstance(filesystem, pafs.LocalFileSystem):
        return
    folder = Path(fs_path)
    for name, digest in sorted(state_digests(filesystem, fs_path, names=STATE_PATTERNS).items()):
        known = saved["files"].get(name, [])
        if digest in known:
            continue
        path = folder / name
        kept = _recorded_copy(folder / KEPT / name, known)
        if kept is None:
            continue  # nothing recorded to put back: `verify` refuses it, and the folder is left as it was
        aside = path.with_name(name + SET_ASIDE)
        aside.unlink(missing_ok=True)
        os.link(path, aside, follow_symlinks=False)  # kept before the recorded version replaces it: a kill between loses nothing
        with atomic_file(path) as tmp:
            tmp.write_bytes(kept)
        log.warning(
            "%s: not a version this user's hamtune recorded (left by a driver killed while Tune saved it, or put "
            "there by someone else); set aside unread as %s and the last recorded version put back",
            path,
            aside.name,
        )


def _recorded_copy(path: Path, known: list[str]) -> bytes | None:
    """The kept copy's bytes if it is a regular file whose digest was recorded; else None."""
    try:
        check_regular(path, limit=None, links=False)
        data = path.read_bytes()
    except (OSError, HamtuneError):
        return None
    return data if hashlib.sha256(data).hexdigest() in known else None


def _local():
    return pafs.LocalFileSystem()
