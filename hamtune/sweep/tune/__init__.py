"""The fence around Ray: every hamtune module that imports Ray (at the top or inside a function) lives in this
package, and nothing else in hamtune does (tests/unit/test_layout.py checks both).

Why: the rest of hamtune.sweep (the space, the confirm stage's plan, the Optuna study mirror's records, the trackers'
logging, the reproduce grid, runtime_env checking) is plain Python that reads and writes results; kept outside, it
is importable and unit-testable without Ray installed or started, and an upgrade of Ray touches only these modules.
The modules here import from hamtune.sweep, never the other way round: `runner` (the Tuner of a sweep), `trainable`
(a trial), `recorder` (results rows as trials end), `trust` and `repair` (a safe resume), `study` and `confirm`
(the searcher and scheduler), `trackers` (Tune's events to the trackers), `cluster` (Ray nodes), `reproduce`
(its Tuner) and `internals` (Ray's private members hamtune relies on).
"""
