"""A driver killed while Tune copies its state to storage can leave a torn copy, or a version Tune wrote before
hamtune recorded it; hamtune sets it aside unread and puts back the last version it recorded (sweep/tune/trust.py), so
the sweep still resumes, while a file it never recorded is still never unpickled."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from hamtune.errors import HamtuneError

SEARCHER = "searcher-state-2026-01-01_00-00-00.pkl"
STATE = "experiment_state-2026-01-01_00-00-00.json"


class Payload:
    """A pickle that, when loaded, creates a marker file (a stand-in for os.system)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "payload ran"))


def saved_by_hamtune(tmp_path: Path, searcher: bytes, state: bytes) -> tuple[Path, Path]:
    """What TrustRecorder does at one Tune save: record the staging folder's state, keep it, copy it to storage."""
    from hamtune.sweep.tune import trust

    staging, experiment = tmp_path / "staging", tmp_path / "sweep" / "tune"
    staging.mkdir(exist_ok=True)
    experiment.mkdir(parents=True, exist_ok=True)
    (staging / SEARCHER).write_bytes(searcher)
    (staging / STATE).write_bytes(state)
    trust.record(str(experiment), trust._local(), str(staging))
    trust.keep_recorded_state(staging, experiment)
    for name in (SEARCHER, STATE):
        (experiment / name).write_bytes((staging / name).read_bytes())
    return staging, experiment


def test_a_torn_experiment_state_is_put_back_from_the_last_complete_recorded_version(tmp_path):
    from hamtune.sweep.tune import trust

    _, experiment = saved_by_hamtune(tmp_path, pickle.dumps({"n": 1}), b'{"trial_data": []}')
    (experiment / STATE).write_bytes(b"")  # the copy a driver killed mid-copy leaves
    trust.put_back_recorded_state(str(experiment))
    assert (experiment / STATE).read_text() == '{"trial_data": []}'
    assert (experiment / (STATE + trust.SET_ASIDE)).read_bytes() == b""
    trust.verify(str(experiment))


def test_a_searcher_state_written_after_the_last_record_is_set_aside_and_the_recorded_one_put_back(tmp_path):
    from hamtune.sweep.tune import trust

    _, experiment = saved_by_hamtune(tmp_path, pickle.dumps({"n": 1}), b'{"trial_data": []}')
    newer = pickle.dumps({"n": 2})  # Tune's next save, copied to storage by a sync still running, then the kill
    (experiment / SEARCHER).write_bytes(newer)
    with pytest.raises(HamtuneError, match="not among those recorded"):
        trust.verify(str(experiment))
    trust.put_back_recorded_state(str(experiment))
    assert pickle.loads((experiment / SEARCHER).read_bytes()) == {"n": 1}
    assert (experiment / (SEARCHER + trust.SET_ASIDE)).read_bytes() == newer
    assert sorted(p.name for p in experiment.glob("searcher-state-*.pkl")) == [SEARCHER]  # Tune's pattern skips the aside
    trust.verify(str(experiment))
    trust.put_back_recorded_state(str(experiment))  # a recorded folder is left as it is
    assert pickle.loads((experiment / SEARCHER).read_bytes()) == {"n": 1}


def test_a_forged_searcher_state_is_never_unpickled(tmp_path):
    from hamtune.sweep.tune import trust

    marker = tmp_path / "pwned"
    _, experiment = saved_by_hamtune(tmp_path, pickle.dumps({"n": 1}), b'{"trial_data": []}')
    forged = pickle.dumps(Payload(marker))
    (experiment / SEARCHER).write_bytes(forged)  # over a recorded name: the recorded version is put back
    trust.put_back_recorded_state(str(experiment))
    trust.verify(str(experiment))
    assert pickle.loads((experiment / SEARCHER).read_bytes()) == {"n": 1}
    planted = experiment / "searcher-state-9999-99-99_99-99-99.pkl"  # a name never recorded: nothing to put back
    planted.write_bytes(forged)
    trust.put_back_recorded_state(str(experiment))
    assert planted.read_bytes() == forged
    with pytest.raises(HamtuneError, match="searcher-state-9999.*not among those recorded"):
        trust.verify(str(experiment))
    (experiment / trust.KEPT / SEARCHER).write_bytes(forged)  # a forged kept copy is not recorded either
    (experiment / SEARCHER).write_bytes(pickle.dumps({"n": 3}))
    trust.put_back_recorded_state(str(experiment))
    assert pickle.loads((experiment / SEARCHER).read_bytes()) == {"n": 3}
    assert not marker.exists()


def test_a_received_folder_without_a_record_is_left_as_it_is_and_refused(tmp_path):
    from hamtune.sweep.tune import trust

    _, experiment = saved_by_hamtune(tmp_path, pickle.dumps({"n": 1}), b'{"trial_data": []}')
    received = tmp_path / "received" / "tune"
    received.parent.mkdir()
    experiment.rename(received)
    (received / SEARCHER).write_bytes(b"forged")
    trust.put_back_recorded_state(str(received))
    assert (received / SEARCHER).read_bytes() == b"forged" and not list(received.glob("*" + trust.SET_ASIDE))
    with pytest.raises(HamtuneError, match="no record of its Tune state"):
        trust.verify(str(received))


def test_a_tuner_pickle_torn_by_a_resumed_drivers_copy_is_put_back(tmp_path):
    """A resumed driver downloads tuner.pkl to staging and copies it back at every save: a kill mid-copy empties it."""
    from hamtune.sweep.tune import trust

    _, experiment = saved_by_hamtune(tmp_path, pickle.dumps({"n": 1}), b'{"trial_data": []}')
    (experiment / trust.TUNER).write_bytes(pickle.dumps({"tuner": 1}))
    trust.record_tuner(str(experiment))
    (experiment / trust.TUNER).write_bytes(b"")
    trust.put_back_recorded_state(str(experiment))
    assert pickle.loads((experiment / trust.TUNER).read_bytes()) == {"tuner": 1}
    trust.verify(str(experiment))
