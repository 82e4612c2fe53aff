"""Reports as a person meets them: leaderboards in the terminal, the HTML page in a headless browser, bad input."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from formats import copy_results

from hamtune.cli import main as cli_main
from hamtune.escape import html as escape
from hamtune.report.__main__ import main
from hamtune.report.html import SECTIONS
from hamtune.results.store import SCHEMA_KEY, SCHEMA_VERSION, load_results, read_parquet

pytestmark = pytest.mark.slow

EVIL = "<script>alert(1)</script>"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM = Path("/usr/bin/chromium")


def write_frame(frame: pd.DataFrame, path: Path, version: int = SCHEMA_VERSION) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({SCHEMA_KEY: str(version).encode()}), path)


def edit_trials(directory: Path, change) -> pd.DataFrame:
    trials = change(read_parquet(directory / "trials.parquet"))
    write_frame(trials, directory / "trials.parquet")
    return trials


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def seed_dir(prepared, tmp_path_factory) -> Path:
    """The notebook's seed-ae config trained for 2 epochs: the baseline a search has to beat."""
    root = tmp_path_factory.mktemp("seed-results")
    assert (
        cli_main(
            ["train", "--preset", "seed-ae", "--data", str(prepared.path), "--set", "epochs=2", "--results", str(root), "--name", "seed"]
        )
        == 0
    )
    return root / "seed"


def classical_rows(template: pd.Series) -> pd.DataFrame:
    """A PCA baseline that beats everything, and a failed trial whose reason is markup."""
    pca = {
        "schema_version": SCHEMA_VERSION,
        "sweep": "classical",
        "trial_id": "pca-16",
        "status": "completed",
        "reason": None,
        "model": "pca",
        "latent_dim": 16,
        "val_auroc": 0.99,
        "test_auroc": 0.99,
        "test_auprc": 0.9,
        "test_f1": 0.8,
        "test_ssim": 0.5,
        "test_mse": 0.01,
        "wall_time_s": 0.5,
        "test_set": template["test_set"],
        "test_fingerprint": template["test_fingerprint"],
        "finished_at": template["finished_at"],
    }
    failed = {**pca, "trial_id": "pca-bad", "status": "failed", "reason": f"ValueError: {EVIL}", "val_auroc": None, "test_auroc": None}
    return pd.DataFrame([pca, failed])


@dataclass
class Report:
    root: Path
    html_path: Path
    page: str
    out: str
    code: int
    err: str = ""


@pytest.fixture(scope="module")
def report(sweep_results, seed_dir, tmp_path_factory) -> Report:
    """One full report: the tiny sweep (with reproduction runs), the seed baseline renamed to markup, and PCA."""
    root = tmp_path_factory.mktemp("report")
    tiny = copy_results(sweep_results, root / "tiny")
    trials = read_parquet(tiny / "trials.parquet")
    repro = pd.DataFrame(
        {
            "config_id": ["best"] * 3 + ["second"] * 3,
            "seed": [0, 1, 2] * 2,
            "test_auroc": [0.61, 0.63, 0.62, 0.55, 0.58, 0.52],
            "test_ssim": [0.4, 0.41, 0.39, 0.3, 0.31, 0.33],
        }
    )
    write_frame(repro, tiny / "reproduce.parquet")
    seed = copy_results(seed_dir, root / "seed")
    edit_trials(seed, lambda t: t.assign(sweep=EVIL))
    classical = root / "classical"
    classical.mkdir()
    write_frame(classical_rows(trials.iloc[0]), classical / "trials.parquet")
    html_path = root / "out" / "report.html"
    capture, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(errors):
        code = main([str(tiny), str(seed), str(classical), "--html", str(html_path)])
    return Report(
        root, html_path, html_path.read_text(encoding="utf-8") if html_path.exists() else "", capture.getvalue(), code, errors.getvalue()
    )


# ---- terminal -------------------------------------------------------------------------------------


def test_leaderboard_is_sorted_by_the_validation_objective_with_the_decision_columns(sweep_results, capsys):
    code, out, err = run([sweep_results, "--no-html"], capsys)
    assert code == 0, err
    trials, _, _ = load_results(sweep_results)
    for header in (
        "rank",
        "trial",
        "kind",
        "arch",
        "latent_dim",
        "batch_size",
        "lr",
        "rebalance",
        "epochs",
        "AUROC",
        "AUPRC",
        "F1",
        "precision",
        "recall",
        "PSNR",
        "SSIM",
        "MSE",
        "wall_s",
    ):
        assert header in out
    board = out.split("Best per")[0]
    order = trials.sort_values(["val_auroc", "trial_id"], ascending=[False, True])["trial_id"].tolist()
    assert [board.index(t) for t in order] == sorted(board.index(t) for t in order)
    assert "Best per kind x arch x rebalance" in out and "report:" not in out
    assert "ranked by val_auroc (higher is better) (chosen on validation), reporting test_auroc" in out


def test_lower_is_better_metrics_rank_ascending_and_csv_is_machine_readable(sweep_results, capsys):
    code, out, _ = run([sweep_results, "--no-html", "--metric", "mse", "--rank-by", "mse", "--format", "csv", "--top", "3"], capsys)
    assert code == 0
    frame = pd.read_csv(io.StringIO(out))
    assert frame["rank"].tolist() == [1, 2, 3]
    assert frame["test_mse"].is_monotonic_increasing and "test_set" in frame.columns and "trial_id" in frame.columns


def test_markdown_and_custom_groups(sweep_results, capsys):
    code, out, _ = run([sweep_results, "--no-html", "--format", "markdown", "--by", "kind"], capsys)
    assert code == 0
    assert "## Best per kind," in out and "| rank | trial |" in out
    best = out.split("## Best per kind")[1]
    assert best.count("\n| ") == 1 + 2  # header + one row per kind


def test_baselines_are_marked_and_failed_trials_listed_not_ranked(report):
    assert report.code == 0
    assert "baseline: seed-ae" in report.out and "classical: pca" in report.out
    assert "Baselines, test set" in report.out
    unranked = report.out.split("Not ranked")[1]
    assert "pca-bad" in unranked and "ValueError" in unranked
    assert "pca-bad" not in report.out.split("Not ranked")[0]
    assert f"report: {report.html_path}" in report.err.strip().splitlines()[-1] and "report:" not in report.out


def test_trials_on_different_test_sets_are_never_ranked_together(sweep_results, tmp_path, capsys):
    other = copy_results(sweep_results, tmp_path / "tiny")
    moved = edit_trials(
        other,
        lambda t: t.assign(
            test_set=np.where(t.index < 2, "isic2018-test", t["test_set"]),
            test_fingerprint=np.where(t.index < 2, "feedbeef", t["test_fingerprint"]),
        ),
    )
    code, out, _ = run([other, "--no-html"], capsys)
    assert code == 0
    assert "2 different test sets" in out
    sections = out.split("Leaderboard, test set ")[1:]
    assert len(sections) == 2
    isic = next(s for s in sections if s.startswith("isic2018-test (feedbeef)"))
    for trial_id in moved["trial_id"][:2]:
        assert trial_id in isic
    assert all(t not in isic.split("Best per")[0] for t in moved["trial_id"][2:])


def test_diverged_trials_show_their_reason(sweep_results, tmp_path, capsys):
    other = copy_results(sweep_results, tmp_path / "tiny")
    trials = edit_trials(
        other,
        lambda t: t.assign(
            status=np.where(t.index == 0, "diverged", t["status"]), reason=np.where(t.index == 0, "loss is nan at epoch 2", None)
        ),
    )
    code, out, _ = run([other, "--no-html"], capsys)
    assert code == 0 and "3 ranked trial(s)" in out
    unranked = out.split("Not ranked")[1]
    assert trials["trial_id"][0] in unranked and "loss is nan at epoch 2" in unranked


def test_default_results_dir_and_hamtune_report_subcommand(sweep_results, tmp_path, monkeypatch, capsys):
    copy_results(sweep_results, tmp_path / "results" / "tiny")
    (tmp_path / "results" / "unrelated").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli_main(["report", "--top", "2"]) == 0
    out, err = capsys.readouterr()
    assert "top 2 of 4" in out
    assert err.strip().splitlines()[-1] == f"hamtune: report: {(tmp_path / 'results' / 'tiny' / 'report.html').resolve()}"
    page = (tmp_path / "results" / "tiny" / "report.html").read_text(encoding="utf-8")
    assert "too few to attribute val_auroc to parameters" in page  # 4 trials: a note, not a figure


def test_a_sweep_with_few_columns_still_reports(tmp_path, capsys):
    """Classical baselines or older sweeps lack most columns; the report shows what there is."""
    sweep = tmp_path / "pca"
    sweep.mkdir()
    write_frame(
        pd.DataFrame({"trial_id": ["pca-8", "pca-32"], "status": ["completed"] * 2, "model": ["pca"] * 2, "test_auroc": [0.6, 0.7]}),
        sweep / "trials.parquet",
    )
    code, out, err = run([sweep], capsys)
    assert code == 0, err
    assert "unknown test set" in out and out.index("pca-32") < out.index("pca-8")
    page = (sweep / "report.html").read_text(encoding="utf-8")
    assert "No deep model beats the classical baseline(s)" in page and 'data-figures="0"' in page


# ---- bad input ------------------------------------------------------------------------------------


def _all_failed(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(status="failed", reason="RuntimeError: CUDA out of memory")


@pytest.mark.parametrize(
    ("case", "expected", "exit_code"),
    [
        ("missing", "no such results folder", 1),
        ("empty", "no trials.parquet", 1),
        ("no-completed", "no completed or stopped trials to rank (4 failed; first reason: RuntimeError: CUDA out of memory)", 1),
        ("old-schema", f"results schema version 0, this hamtune reads version {SCHEMA_VERSION}", 1),
        ("unknown-metric", "unknown metric 'accuracy'; choose one of test_auroc", 2),
        ("unknown-group", "--by 'kind,colour': unknown column(s) colour", 2),
        ("no-default", "results: no sweep results found", 1),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(case, expected, exit_code, sweep_results, tmp_path, monkeypatch, capsys):
    """A bad flag value is a usage error (2); missing or broken results are a failure while working (1)."""
    monkeypatch.chdir(tmp_path)
    argv: list = [tmp_path / "results" / "tiny", "--no-html"]
    if case == "empty":
        argv[0].mkdir(parents=True)
    elif case != "missing" and case != "no-default":
        copy_results(sweep_results, argv[0])
    if case == "no-completed":
        edit_trials(argv[0], _all_failed)
    elif case == "old-schema":
        write_frame(read_parquet(argv[0] / "trials.parquet"), argv[0] / "trials.parquet", version=0)
    elif case == "unknown-metric":
        argv += ["--metric", "accuracy"]
    elif case == "unknown-group":
        argv += ["--by", "kind,colour"]
    elif case == "no-default":
        argv = ["--no-html"]
    code, out, err = run(argv, capsys)
    assert code == exit_code
    assert expected in err and len(err.strip().splitlines()) == 1 and err.startswith("hamtune: error: ")
    assert "Traceback" not in err + out


# ---- HTML -----------------------------------------------------------------------------------------


NOT_IN_THIS_REPORT = ("external", "stress")  # these folders have no external test set and no stress run


def test_html_report_is_self_contained_with_every_section(report):
    page = report.page
    figures = int(page.split('data-figures="')[1].split('"')[0])
    assert figures == page.count('class="plotly-graph-div"') == 9
    assert page.count("plotly.js v") == 1 and "<script src=" not in page  # plotly.js inlined once, nothing fetched
    assert len({section.anchor for section in SECTIONS}) == len(SECTIONS)
    shown = [section for section in SECTIONS if section.anchor not in NOT_IN_THIS_REPORT]
    at = [page.find(f'<section id="{section.anchor}"><h2>{escape(section.title)}</h2>') for section in shown]
    assert -1 not in at and at == sorted(at), dict(zip([section.anchor for section in shown], at))  # every one, in order
    assert not [anchor for anchor in NOT_IN_THIS_REPORT if f'<section id="{anchor}">' in page]
    assert page.count("<figure><img alt=") == page.count('" src="data:image/png;base64,')
    images = page.split('<section id="images">')[1].split("</section>")[0]
    assert images.count("<figure><img alt=") == 2  # best AE and VAE
    maps = page.split('<section id="maps">')[1].split("</section>")[0]  # shown where the checkpoint is: test_maps.py
    assert "No anomaly maps for" in maps and "is missing; nothing to export" in maps  # copied results, no checkpoints
    assert '<table class="sortable">' in page and 'tr class="baseline"' in page
    assert "0.62 ± 0.01" in page  # reproduction: mean ± std over three seeds


def test_summary_names_the_best_model_and_flags_a_deep_model_that_does_not_beat_pca(report):
    summary = report.page.split('<section id="summary">')[1].split("</section>")[0]
    assert "Best deep model of " in summary and "seed-ae" in summary
    assert "The best model here is pca (val_auroc 0.99); the best deep model is " in summary  # a classical row is above
    assert "No deep model beats the classical baseline(s)" in summary and "pca (0.99" in summary
    assert "complete trial(s): too few to attribute val_auroc to parameters (at least 10 needed" in summary
    assert "95% bootstrap intervals stratified by label" in summary and "Paired bootstrap" in summary
    leaderboard = report.page.split('<section id="leaderboard">')[1].split("</section>")[0]
    assert "AUROC (95% CI)" in leaderboard and "AUROC mel" in leaderboard


def test_strings_from_results_are_escaped_everywhere(report):
    page = report.page
    assert EVIL not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt;</td>" in page


def test_report_opens_in_a_browser_with_every_figure_drawn(report, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        alerts: list[str] = []
        page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
        page.goto(report.html_path.as_uri())
        page.wait_for_load_state("load")
        expected = int(page.evaluate("document.body.dataset.figures"))
        drawn = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot')).filter(d => d.querySelector('.main-svg')).length")
        page.click("#leaderboard table.sortable th:nth-child(1)")
        page.click("#leaderboard table.sortable th:nth-child(1)")
        first_rank = page.evaluate("document.querySelector('#leaderboard table.sortable tbody tr td').textContent")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert expected == 9 and drawn == expected
    assert first_rank != "1"  # clicking the rank header twice sorts descending
    assert errors == [] and alerts == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
