"""The data layer: every public form to one canonical cache, label orders, caching, and clear errors."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REAL_METADATA, REAL_SAMPLE, needs_shared
from formats import copy_release, write_dermamnist, write_hmnist, zip_release

from hamtune.cli import main
from hamtune.data.images import Preprocess, decode
from hamtune.data.prepare import load_prepared, prepare
from hamtune.data.release import read_metadata
from hamtune.data.sources import load_source
from hamtune.data.splits import PROTOCOLS, rebalance_weights, split_by_lesion
from hamtune.errors import HamtuneError

CANONICAL = {"image_id", "lesion_id", "dx", "label", "source"}


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ---- the three forms -------------------------------------------------------------------------------


def test_release_folders_zips_and_tab_give_identical_caches(release_dir, tmp_path):
    from_folders = load_prepared(prepare(release_dir, size=32, progress=False))
    from_zips = load_prepared(prepare(zip_release(release_dir, tmp_path / "zips", tab=True), size=32, progress=False))
    assert from_folders.manifest["count"] == 400
    assert from_folders.fingerprint == from_zips.fingerprint
    assert np.array_equal(from_folders.images, from_zips.images)
    assert CANONICAL <= set(from_folders.meta.columns)
    assert from_folders.images.shape == (400, 32, 32, 3)
    assert from_folders.manifest["source_sizes"] == {"160x120": 400}


def test_hmnist_rows_decode_in_the_hmnist_label_order(prepared, tmp_path):
    pixels, dx = np.asarray(prepared.images[:120]), list(prepared.meta["dx"][:120])
    path = write_hmnist(tmp_path / "hmnist_28_28_RGB.csv", pixels, dx)
    source = load_source(path)
    assert source.form == "hmnist" and "4 nv" in source.mapping and "6 mel" in source.mapping
    assert list(source.table["dx"]) == dx
    assert np.array_equal(source.pixels, pixels)
    assert any("no lesion ids" in note for note in source.notes)
    cache = load_prepared(prepare(path, progress=False))
    assert cache.images.shape == (120, 28, 28, 3) and CANONICAL <= set(cache.meta.columns)
    assert cache.meta["lesion_id"].isna().all()


def test_hmnist_grey_8x8_shape_from_the_name(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (60, 8, 8, 1), dtype=np.uint8)
    dx = ["nv"] * 40 + ["mel"] * 10 + ["bkl"] * 10
    source = load_source(write_hmnist(tmp_path / "hmnist_8_8_L.csv", pixels, dx))
    assert source.pixels.shape == (60, 8, 8, 1) and np.array_equal(source.pixels, pixels)


def test_hmnist_metadata_attaches_lesion_ids_only_when_rows_match(prepared, tmp_path):
    meta = prepared.meta.iloc[:100]
    metadata = tmp_path / "HAM10000_metadata.csv"
    meta[["lesion_id", "image_id", "dx"]].to_csv(metadata, index=False)
    path = write_hmnist(tmp_path / "hmnist_28_28_RGB.csv", np.asarray(prepared.images[:100]), list(meta["dx"]))
    source = load_source(path, metadata=metadata)
    assert list(source.table["lesion_id"]) == list(meta["lesion_id"])
    shuffled = meta.sample(frac=1.0, random_state=3)
    shuffled[["lesion_id", "image_id", "dx"]].to_csv(metadata, index=False)
    with pytest.raises(HamtuneError, match="row orders do not match"):
        load_source(path, metadata=metadata)


def test_dermamnist_labels_official_split_and_canonical_schema(prepared, tmp_path):
    pixels, dx = np.asarray(prepared.images[:200]), list(prepared.meta["dx"][:200])
    path = write_dermamnist(tmp_path / "dermamnist.npz", pixels, dx)
    source = load_source(path)
    assert "4 mel" in source.mapping and "5 nv" in source.mapping
    assert list(source.table["dx"]) == dx
    assert list(source.table["official_split"].unique()) == ["train", "val", "test"]
    cache = load_prepared(prepare(path, size=32, progress=False))
    assert cache.images.shape == (200, 32, 32, 3) and CANONICAL | {"official_split"} <= set(cache.meta.columns)


def test_a_file_in_the_wrong_label_order_is_refused(prepared, tmp_path):
    from hamtune.data.labels import HMNIST_LABELS

    pixels, dx = np.asarray(prepared.images[:200]), list(prepared.meta["dx"][:200])
    wrong = write_dermamnist(tmp_path / "dermamnist.npz", pixels, dx, order=HMNIST_LABELS)
    with pytest.raises(HamtuneError, match="most frequent class is 'mel'"):
        load_source(wrong)


def test_real_sample_jpegs_of_another_size_decode(tmp_path):
    if not REAL_SAMPLE.exists():
        pytest.skip(f"{REAL_SAMPLE} is absent (../shared is not beside this clone)")
    folder = tmp_path / "real"
    (folder / "HAM10000_images_part_1").mkdir(parents=True)
    shutil.copy(REAL_SAMPLE / "metadata.csv", folder / "HAM10000_metadata.csv")
    for image in REAL_SAMPLE.glob("*.jpg"):
        shutil.copy(image, folder / "HAM10000_images_part_1" / image.name)
    cache = load_prepared(prepare(folder, size=64, progress=False))
    assert cache.manifest["source_sizes"] == {"224x224": 70}
    assert cache.manifest["counts"] == {dx: 10 for dx in ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")}
    assert 60 < cache.images.mean() < 220


@pytest.mark.parametrize("crop", ["center", "resize", "pad"])
def test_crops_make_squares_from_4_by_3(crop):
    from io import BytesIO

    from PIL import Image

    image = Image.new("RGB", (600, 450), (200, 150, 150))
    image.paste((20, 20, 20), (0, 0, 75, 450))  # a dark strip on the left, cut by center crop
    buffer = BytesIO()
    image.save(buffer, "JPEG", quality=95)
    array, size = decode(buffer.getvalue(), Preprocess(64, crop, 3))
    assert array.shape == (64, 64, 3) and size == (600, 450)
    left = array[:, :4].mean()
    if crop == "center":
        assert left > 150
    else:
        assert left < 80
    grey, _ = decode(buffer.getvalue(), Preprocess(32, crop, 1))
    assert grey.shape == (32, 32, 1)


# ---- the cache -------------------------------------------------------------------------------------


def test_second_prepare_is_a_cache_hit_in_under_a_second(release_dir, tmp_path):
    out = tmp_path / "cache"
    prepare(release_dir, size=24, out=out, progress=False)
    first = (out / "manifest.json").stat().st_mtime_ns
    started = time.perf_counter()
    assert prepare(release_dir, size=24, out=out, progress=False) == out
    assert time.perf_counter() - started < 1.0
    assert (out / "manifest.json").stat().st_mtime_ns == first
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_a_changed_source_or_option_is_a_miss(release_dir, tmp_path):
    source = copy_release(release_dir, tmp_path / "copy")
    a = prepare(source, size=24, progress=False)
    assert prepare(source, size=24, crop="pad", progress=False) != a
    image = next((source / "HAM10000_images_part_1").iterdir())
    image.write_bytes(image.read_bytes())
    time.sleep(0.01)
    image.touch()
    assert prepare(source, size=24, progress=False) != a


def test_a_damaged_cache_is_named_with_its_rebuild_command(release_dir, tmp_path):
    out = prepare(release_dir, size=24, out=tmp_path / "cache", progress=False)
    images = out / "images.npy"
    data = bytearray(images.read_bytes())
    data[-100] ^= 0xFF
    images.write_bytes(bytes(data))
    with pytest.raises(HamtuneError, match="fingerprint.*hamtune data prepare .* --size 24"):
        load_prepared(out)
    images.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(HamtuneError, match="images.npy.*truncated.*rebuild it with"):
        load_prepared(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(HamtuneError, match="manifest.json"):
        load_prepared(out)


# ---- bad input: one clear line, exit code 1, no cache ----------------------------------------------


def test_missing_metadata(tmp_path, capsys):
    (tmp_path / "HAM10000_images_part_1").mkdir()
    code, out = run_cli(["data", "prepare", tmp_path], capsys)
    assert code == 1 and "found no HAM10000 data" in out and "Traceback" not in out


def test_missing_images_are_counted_and_named(release_dir, tmp_path, capsys):
    source = copy_release(release_dir, tmp_path / "copy")
    missing = sorted((source / "HAM10000_images_part_2").iterdir())[:3]
    for image in missing:
        image.unlink()
    code, out = run_cli(["data", "prepare", source, "--size", "16", "--out", tmp_path / "c"], capsys)
    assert code == 1 and "3 of 400 images" in out and missing[0].stem in out and "--skip-missing" in out
    assert not (tmp_path / "c").exists()
    code, out = run_cli(["data", "prepare", source, "--size", "16", "--out", tmp_path / "c", "--skip-missing"], capsys)
    assert code == 0 and load_prepared(tmp_path / "c").manifest["count"] == 397


def test_corrupt_jpeg_is_named(release_dir, tmp_path, capsys):
    source = copy_release(release_dir, tmp_path / "copy")
    victim = sorted((source / "HAM10000_images_part_1").iterdir())[5]
    victim.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    code, out = run_cli(["data", "prepare", source, "--size", "16", "--out", tmp_path / "c"], capsys)
    assert code == 1 and victim.name in out and "could not be decoded" in out
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob(".c.tmp*"))


def test_unknown_dx_names_file_line_and_field(release_dir, tmp_path, capsys):
    source = copy_release(release_dir, tmp_path / "copy")
    metadata = source / "HAM10000_metadata.csv"
    lines = metadata.read_text().splitlines()
    fields = lines[7].split(",")
    fields[2] = "melanomaa"
    lines[7] = ",".join(fields)
    metadata.write_text("\n".join(lines) + "\n")
    code, out = run_cli(["data", "prepare", source], capsys)
    assert code == 1 and "HAM10000_metadata.csv: line 8: field 'dx' is 'melanomaa'" in out


def test_wrong_columns(release_dir, tmp_path, capsys):
    source = copy_release(release_dir, tmp_path / "copy")
    metadata = source / "HAM10000_metadata.csv"
    frame = pd.read_csv(metadata, dtype=str).rename(columns={"dx": "diagnosis"})
    frame.to_csv(metadata, index=False)
    code, out = run_cli(["data", "prepare", source], capsys)
    assert code == 1 and "missing column(s) dx" in out


def test_npz_without_the_keys(tmp_path, capsys):
    np.savez(tmp_path / "dermamnist.npz", images=np.zeros((3, 28, 28, 3), np.uint8))
    code, out = run_cli(["data", "prepare", tmp_path / "dermamnist.npz"], capsys)
    assert code == 1 and "missing key(s) train_images" in out


def test_hmnist_bad_cell_names_line_and_column(tmp_path, capsys):
    path = write_hmnist(tmp_path / "hmnist_8_8_L.csv", np.zeros((5, 8, 8, 1), np.uint8), ["nv"] * 5)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("0,", "300,", 1)
    path.write_text("\n".join(lines) + "\n")
    code, out = run_cli(["data", "prepare", path], capsys)
    assert code == 1 and "line 4: field 'pixel0000' is '300'" in out


def test_empty_metadata(tmp_path, capsys):
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\n")
    code, out = run_cli(["data", "prepare", tmp_path], capsys)
    assert code == 1 and "no images left" in out


# ---- splits and protocols --------------------------------------------------------------------------


@needs_shared(REAL_METADATA)
def test_real_metadata_splits_keep_lesions_together_and_class_shares():
    meta = read_metadata(REAL_METADATA)
    assert len(meta) == 10015 and meta["lesion_id"].nunique() == 7470
    assert meta["age"].isna().sum() > 0
    split = split_by_lesion(meta, seed=0)
    frame = meta.assign(split=split)
    assert (frame.groupby("lesion_id")["split"].nunique() == 1).all()
    whole = frame["dx"].value_counts(normalize=True)
    for name, part in frame.groupby("split"):
        shares = part["dx"].value_counts(normalize=True).reindex(whole.index, fill_value=0)
        assert (shares - whole).abs().max() < 0.02, name
    sizes = frame["split"].value_counts(normalize=True)
    assert abs(sizes["train"] - 0.70) < 0.01 and abs(sizes["val"] - 0.15) < 0.01


def test_splits_are_deterministic_per_seed_and_fractions_configurable(prepared):
    a = split_by_lesion(prepared.meta, seed=4)
    assert np.array_equal(a, split_by_lesion(prepared.meta, seed=4))
    assert not np.array_equal(a, split_by_lesion(prepared.meta, seed=5))
    b = split_by_lesion(prepared.meta, (0.5, 0.25, 0.25), seed=4)
    assert abs((b == "train").mean() - 0.5) < 0.05


def test_protocols():
    dx = np.array(["nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"])
    assert list(PROTOCOLS["cancer"].labels(dx)) == [0, 1, 0, 1, 1, 0, 0]
    assert list(PROTOCOLS["nevus"].labels(dx)) == [0, 1, 1, 1, 1, 1, 1]


def test_rebalance_weights_equalise_classes():
    dx = np.array(["nv"] * 83 + ["bkl"] * 12 + ["vasc"] * 3 + ["df"] * 2)
    weights = rebalance_weights(dx)
    per_class = {c: weights[dx == c].sum() for c in ("nv", "bkl", "vasc", "df")}
    assert np.allclose(list(per_class.values()), 0.25)


@pytest.mark.parametrize("form", ["release", "hmnist", "dermamnist", "isic2018"])
def test_every_registered_form_is_recognised_by_file_and_folder_and_loads_the_seven_classes(
    form, release_dir, isic_dir, prepared, tmp_path
):
    from hamtune.data.sources import BY_NAME, FORMS, detect

    assert [f.name for f in FORMS] and form in BY_NAME
    pixels, dx = np.asarray(prepared.images[:140]), list(prepared.meta["dx"][:140])
    folder = tmp_path / form
    if form != "release":
        folder.mkdir()
    file = {
        "release": lambda: copy_release(release_dir, folder) / "HAM10000_metadata.csv",
        "hmnist": lambda: write_hmnist(folder / "hmnist_28_28_RGB.csv", pixels, dx),
        "dermamnist": lambda: write_dermamnist(folder / "dermamnist.npz", pixels, dx),
        "isic2018": lambda: next(isic_dir.glob("ISIC2018_Task3_*GroundTruth*.csv")),
    }[form]()
    assert detect(file) == form
    assert detect(file.parent) == form
    source = BY_NAME[form].load(file.parent if form in ("release", "isic2018") else file, skip_missing=False, metadata=None)
    assert set(source.table["dx"]) <= {"nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"} and len(source.table) > 0
