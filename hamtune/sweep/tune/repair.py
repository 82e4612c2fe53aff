"""Mends a resumed sweep's trial checkpoints that a killed driver left named but deleted.

Tune deletes a trial's older checkpoint as soon as it registers a newer one (`num_to_keep`), and
saves its experiment state a moment later. A driver killed in between leaves a state that names a
deleted folder, and Tune refuses to restore such a trial. Before any trial starts, the trial's
newest complete checkpoint takes the missing folder's place; with none left, an empty folder does,
and the trial starts over (an incomplete checkpoint is not resumed from).
"""

from __future__ import annotations

import logging
import posixpath

from pyarrow import fs as pafs
from ray import tune

from hamtune.train import checkpoint as ckpt
from hamtune.train.fused import GROUP_FILE

log = logging.getLogger(__name__)


def is_complete(checkpoint: tune.Checkpoint) -> bool:
    """Whether a checkpoint folder holds everything a run resumes from."""
    return _is_complete(checkpoint.filesystem, checkpoint.path)


def _is_complete(filesystem: pafs.FileSystem, path: str) -> bool:
    """A run's checkpoint with every file it resumes from, or a fused group's (group.json is written last)."""
    infos = filesystem.get_file_info([posixpath.join(path, name) for name in (*ckpt.RESUME_FILES, GROUP_FILE)])
    return all(info.type == pafs.FileType.File for info in infos[:-1]) or infos[-1].type == pafs.FileType.File


def repair_checkpoint(checkpoint: tune.Checkpoint) -> str | None:
    """Put the newest complete later checkpoint (or an empty folder) where a missing one was named.

    Later checkpoints other than the one moved are deleted: Tune never learnt of them and would
    otherwise write over them. Returns what was done, or None when the checkpoint exists.
    """
    filesystem, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
    assert filesystem is not None  # Tune resolves a checkpoint's filesystem when it restores the experiment
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        return None
    folder, name = posixpath.split(path)
    later = sorted(
        (
            info
            for info in filesystem.get_file_info(pafs.FileSelector(folder))
            if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_") and info.base_name > name
        ),
        key=lambda info: info.base_name,
    )
    complete = [info for info in later if _is_complete(filesystem, info.path)]
    source = complete[-1] if complete else None
    for info in later:
        if info is not source:
            filesystem.delete_dir(info.path)
    if source is None:
        filesystem.create_dir(path)
        return f"{name} is gone and no later checkpoint survives: the trial starts over"
    _move_folder(filesystem, source.path, path)
    return f"{name} is gone: resuming from {source.base_name}, the trial's newest"


def _move_folder(filesystem: pafs.FileSystem, source: str, target: str) -> None:
    """A bucket has no folder to rename (S3's CopyObject of a prefix fails with NoSuchKey): its files are copied,
    then the source deleted. A local folder is renamed, in one step."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        filesystem.move(source, target)
        return
    pafs.copy_files(source, target, source_filesystem=filesystem, destination_filesystem=filesystem)
    filesystem.delete_dir(source)


class RepairCheckpoints(tune.Callback):
    """Runs `repair_checkpoint` over every unfinished trial once, before the first trial starts."""

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self.done = False

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.done:
            return
        self.done = True
        for trial in trials:
            if trial.status not in ("TERMINATED", "ERROR") and trial.checkpoint is not None:
                message = repair_checkpoint(trial.checkpoint)
                if message:
                    log.info("trial %s: checkpoint %s", trial.trial_id, message)
