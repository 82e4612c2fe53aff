"""The experiment trackers (sweep/trackers.py) inside Tune: one callback per tracker hands it each trial's start,
epochs and end, and the sweep's start and end, in the driver."""

from __future__ import annotations

from pathlib import Path

from ray import tune

from hamtune.sweep.trackers import TrialTracker, make_trackers


class TrackerCallback(tune.Callback):
    """Tune's events, for one tracker (placed after the results recorder: a trial's end logs the row it wrote)."""

    def __init__(self, tracker: TrialTracker):
        self.tracker = tracker

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        self.tracker.setup()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.tracker.trial_started(trial.trial_id, trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.tracker.trial_reported(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.tracker.trial_ended(trial.trial_id, trial.config)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.tracker.trial_ended(trial.trial_id, trial.config)

    def on_experiment_end(self, trials, **info) -> None:
        self.tracker.finish()


def tracker_callbacks(
    names: tuple[str, ...],
    directory: Path,
    sweep: str,
    manifest: dict | None = None,
    sampled: tuple[str, ...] = (),
    settings: dict | None = None,
) -> list[TrackerCallback]:
    """Tune callbacks for the trackers `names` (each checked with `require` first, before anything is loaded)."""
    return [TrackerCallback(tracker) for tracker in make_trackers(names, directory, sweep, manifest, sampled, settings)]
