"""A whole workflow driven through the Python API alone, as a notebook would: prepare, sweep, baselines, ensemble,
report, export and score, asserting on the objects returned; and nothing reaches the cell's output."""

from __future__ import annotations

import pytest
from conftest import TINY_SPACE

pytestmark = pytest.mark.slow


def test_a_notebook_runs_the_whole_workflow_through_the_api_and_nothing_is_printed(release_dir, ray_local, tmp_path, capsys):
    import hamtune

    capsys.readouterr()
    data = hamtune.prepare_data(release_dir, size=28, progress=False)
    assert data.manifest["count"] == 400 and data.images.shape[1:3] == (28, 28)

    root = tmp_path / "results"
    swept = hamtune.run_sweep({**TINY_SPACE, "data": str(data.path)}, results=root, num_samples=2, max_epochs=1)
    assert isinstance(swept, hamtune.Results) and (swept.directory / "chosen.json").exists()
    folder = swept.directory
    results = hamtune.open_results(swept)  # a Results stands for its folder wherever a path is taken
    assert len(results.trials) == 2 and set(results.trials["status"]) == {"completed"}
    assert len(results.epochs) == 2 and set(results.scores["trial_id"]) == set(results.trials["trial_id"])

    board = results.leaderboard()
    best = results.best
    assert best.trial_id == board["trial_id"].iloc[0] and list(board["rank"]) == [1, 2]
    assert best.metrics["val_auroc"] == results.trials["val_auroc"].max()
    assert best.config["image_size"] == 28 and best.config["kind"] in ("ae", "vae") and "val_auroc" not in best.config
    assert len(results.configurations()) == 2

    baselines = hamtune.run_baselines(data.path, methods="pca-8,knn-3", results=root)
    assert baselines.directory == root / "baselines" and baselines.protocol == "cancer"
    assert [row["model"] for row in baselines.rows] == ["pca-8", "pca-8-ssim", "pca-8-mse+ssim", "knn-3"]
    with pytest.raises(hamtune.HamtuneError, match="settings lr: not used by classical baselines"):
        hamtune.run_baselines(data.path, results=root, lr=0.1)

    ensemble = hamtune.build_ensemble(folder, top=2, root=root)
    assert ensemble.directory == root / f"{folder.name}-ensemble"
    assert sorted(ensemble.row["members"].split(",")) == sorted(results.trials["trial_id"])
    assert hamtune.open_results(ensemble.directory).best.trial_id == ensemble.row["trial_id"]

    html = hamtune.write_report(folder, baselines.directory, ensemble.directory, html=tmp_path / "all.html")
    assert html.exists() and "Which model is best and why" in html.read_text()
    assert results.report() == folder / "report.html" and (folder / "report.html").exists()

    bundle = results.export(tmp_path / "model")
    assert (bundle / "model.pt").exists()
    table = hamtune.score(bundle, data.path)
    written = hamtune.write_scores(bundle, data.path, out=tmp_path / "scores" / "all.csv")
    assert written.out.read_text().startswith("image,score,flagged") and len(written.table) == len(table) == 400
    assert (written.table["flagged"] == (written.table["score"] > written.threshold)).all() and not written.problems
    with pytest.raises(hamtune.HamtuneError, match="out .*scores.csv: is inside .*, which this command reads"):
        hamtune.write_scores(bundle, data.path, out=bundle / "scores.csv")

    assert capsys.readouterr() == ("", "")
