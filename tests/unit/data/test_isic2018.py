"""ISIC 2018 Task 3 as an external test set: layout, one-hot labels, overlap, per-disease AUROC."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from hamtune.cli import main
from hamtune.data.prepare import load_prepared, prepare, resolve_data
from hamtune.data.sources import load_source
from hamtune.errors import HamtuneError
from hamtune.results.store import load_results
from hamtune.train.config import TrainConfig
from hamtune.train.loop import train

SQUARE = "synthetic-isic2018:n=300,test=150,size=224x224"


def zipped(isic_dir: Path, out: Path) -> Path:
    """The same release as the challenge ships it: input folders inside zips of the same names."""
    out.mkdir()
    for item in isic_dir.iterdir():
        if item.is_dir():
            with zipfile.ZipFile(out / f"{item.name}.zip", "w") as archive:
                for image in sorted(item.iterdir()):
                    archive.write(image, f"{item.name}/{image.name}")
        else:
            shutil.copy(item, out / item.name)
    return out


def test_layout_maps_one_hot_rows_to_dx_with_lesions_and_official_splits(isic_dir, tmp_path):
    source = load_source(isic_dir)
    assert source.form == "isic2018" and "MEL" in source.mapping
    table = source.table
    assert set(table["official_split"]) == {"train", "test"}
    assert table["lesion_id"][table["official_split"] == "train"].notna().all()
    assert table["lesion_id"][table["official_split"] == "test"].isna().all()
    truth = (isic_dir / "ISIC2018_Task3_Test_GroundTruth.csv").read_text().splitlines()
    first = truth[1].split(",")
    columns = truth[0].split(",")[1:]
    assert table.set_index("image_id").loc[first[0], "dx"] == columns[[float(v) for v in first[1:]].index(1.0)].lower()
    from_zips = load_prepared(prepare(zipped(isic_dir, tmp_path / "zips"), size=32, progress=False))
    from_folders = load_prepared(prepare(isic_dir, size=32, progress=False))
    assert from_zips.fingerprint == from_folders.fingerprint
    assert from_folders.manifest["source_sizes"] == {"600x450": 450}


def test_square_inputs_go_through_the_same_path():
    data = resolve_data(SQUARE, size=32, progress=False)
    assert data.manifest["source_sizes"] == {"224x224": 450} and data.images.shape[1:] == (32, 32, 3)


def test_a_row_that_is_not_one_hot_names_file_and_line(isic_dir, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(isic_dir, folder)
    truth = folder / "ISIC2018_Task3_Test_GroundTruth.csv"
    lines = truth.read_text().splitlines()
    parts = lines[5].split(",")
    parts[1:] = ["1.0", "1.0"] + ["0.0"] * 5
    lines[5] = ",".join(parts)
    truth.write_text("\n".join(lines) + "\n")
    with pytest.raises(HamtuneError, match=r"Test_GroundTruth.csv: line 6: .* is not one-hot"):
        load_source(folder)


def test_an_image_in_training_and_external_test_is_an_error(isic_dir):
    ham = resolve_data("synthetic:n=300,size=600x450", size=24, progress=False)
    training_only = load_prepared(prepare(isic_dir / "ISIC2018_Task3_Training_GroundTruth.csv", size=24, progress=False))
    with pytest.raises(HamtuneError, match=r"300 image\(s\) are both in the training data"):
        train(TrainConfig(image_size=24, epochs=1), ham, test_data=training_only)


def test_external_test_metrics_come_from_the_external_rows_only(isic_dir):
    ham = resolve_data("synthetic:n=300,size=600x450", size=24, progress=False)
    isic = load_prepared(prepare(isic_dir, size=24, progress=False))
    config = TrainConfig(image_size=24, epochs=2, protocol="nevus", cnn_channels=8, latent_dim=8)
    result = train(config, ham, test_data=isic)
    external = isic.meta[isic.meta["official_split"] == "test"]
    assert set(result.scores["image_id"]) == set(external["image_id"])
    assert not set(result.scores["image_id"]) & set(ham.meta["image_id"])
    scores = result.scores
    normal = scores["dx"] == "nv"
    for dx in ("mel", "bkl", "bcc"):
        keep = normal | (scores["dx"] == dx)
        expected = roc_auc_score(scores["label"][keep], scores["score"][keep])
        assert result.final[f"test_auroc_{dx}"] == pytest.approx(expected, abs=1e-12)
    assert result.final["test_auroc"] == pytest.approx(roc_auc_score(scores["label"], scores["score"]), abs=1e-12)
    assert len(result.run.val.index) > 0 and set(result.run.val.image_id) <= set(ham.meta["image_id"])


def test_cli_train_with_external_test_data_in_both_layouts(isic_dir, tmp_path, capsys):
    for data in ("synthetic:n=300,size=600x450", str(isic_dir)):
        code = main(
            [
                "train",
                "--data",
                data,
                "--test-data",
                str(isic_dir),
                "--set",
                "protocol=nevus",
                "--set",
                "epochs=1",
                "--set",
                "image_size=24",
                "--results",
                str(tmp_path),
                "--name",
                "ext",
            ]
        )
        assert code == 0, capsys.readouterr().err
    trials, _, scores = load_results(tmp_path / "ext")
    assert len(trials) == 2 and trials["test_set"].nunique() == 1 and trials["test_set"].iloc[0].startswith("isic2018-")
    assert trials["test_path"].notna().all()
    assert scores.groupby("trial_id").size().nunique() == 1
