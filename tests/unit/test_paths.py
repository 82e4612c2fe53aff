"""The results lock (filelock, so hamtune imports on Windows too): a second writer is refused naming the
holder's PID; a dead holder's lock is taken over; a folder that only ever held the lock is not left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hamtune.errors import HamtuneError, UsageError
from hamtune.paths import LOCK, results_folder, results_lock

HOLD = "import sys, time\nfrom hamtune.paths import results_lock\nwith results_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    folder = tmp_path / "sweep"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(HamtuneError, match=rf"in use by another hamtune \(PID {holder.pid}\)"), results_lock(folder):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with results_lock(folder):
        assert (folder / LOCK).read_text() == str(os.getpid())
        with pytest.raises(HamtuneError, match=rf"PID {os.getpid()}"), results_lock(folder):
            pass  # one process, two writers: refused as well


def test_a_folder_that_only_held_the_lock_is_removed_and_one_with_results_keeps_it(tmp_path):
    with results_lock(tmp_path / "empty"):
        pass
    assert not (tmp_path / "empty").exists()
    with results_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "trials.parquet").write_bytes(b"")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [LOCK, "trials.parquet"]


def test_a_bad_name_flag_is_a_usage_error_and_a_files_name_a_data_error(tmp_path):
    with pytest.raises(UsageError):
        results_folder(tmp_path, "../x")
    with pytest.raises(HamtuneError) as error:
        results_folder(tmp_path, "../x", "space.yaml: name:")
    assert not isinstance(error.value, UsageError)
