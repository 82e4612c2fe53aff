"""A driver killed while Tune copies its experiment state to storage leaves a torn copy; hamtune puts back the last
complete version it recorded (sweep/trust.py), so the sweep still resumes."""

from __future__ import annotations


def test_a_torn_experiment_state_is_put_back_from_the_last_complete_recorded_version(tmp_path):
    from hamtune.sweep import trust

    staging, experiment = tmp_path / "staging", tmp_path / "tune"
    staging.mkdir()
    experiment.mkdir()
    (staging / "experiment_state-x.json").write_text('{"trial_data": []}')
    trust.keep_whole_state(staging, experiment)
    (experiment / "experiment_state-x.json").write_bytes(b"")  # the copy a driver killed mid-copy leaves
    trust.repair_torn_state(experiment)
    assert (experiment / "experiment_state-x.json").read_text() == '{"trial_data": []}'
    (experiment / "experiment_state-x.json").write_text('{"trial_data": [1]}')  # a whole copy is left alone
    trust.repair_torn_state(experiment)
    assert (experiment / "experiment_state-x.json").read_text() == '{"trial_data": [1]}'
