"""The input gate as a contract: every reader, against every hostile kind of file (a FIFO, a link to /dev/zero, a
folder where a file belongs, a file over its size cap, a cut file, garbage), ends in one line naming the file within
seconds: never a hang, never memory exhausted, never a traceback. Images that are bombs or broken are skipped with
their reasons, and the other images are still scored. A new reader is covered by being added to READERS."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hamtune.errors import HamtuneError
from hamtune.files import MAX_SOURCE_BYTES, MAX_TEXT_BYTES

pytestmark = pytest.mark.slow
SECONDS = 20


def _fifo(path: Path, good: bytes, cap: int) -> None:
    os.mkfifo(path)


def _zero(path: Path, good: bytes, cap: int) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path, good: bytes, cap: int) -> None:
    path.mkdir()


def _oversize(path: Path, good: bytes, cap: int) -> None:
    with open(path, "wb") as handle:  # sparse: the size is claimed, not written
        handle.write(good)
        handle.truncate(cap + 1)


def _cut(path: Path, good: bytes, cap: int) -> None:
    path.write_bytes(good[: len(good) // 2])


def _garbage(path: Path, good: bytes, cap: int) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


KINDS: dict[str, Callable[[Path, bytes, int], None]] = {
    "a FIFO": _fifo,
    "a link to /dev/zero": _zero,
    "a folder": _folder,
    "over the cap": _oversize,
    "cut in half": _cut,
    "garbage": _garbage,
}


def _metadata_csv() -> bytes:
    rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
    rows += [f"HAM_{i:07d},ISIC_{i:07d},{'nv' if i % 3 else 'mel'},histo,50,male,back" for i in range(60)]
    return ("\n".join(rows) + "\n").encode()


def _isic_csv() -> bytes:
    rows = ["image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"] + [f"ISIC_{i:07d},0,1,0,0,0,0,0" for i in range(60)]
    return ("\n".join(rows) + "\n").encode()


def _hmnist_csv() -> bytes:
    header = ",".join(f"pixel{i:04d}" for i in range(8 * 8 * 3)) + ",label"
    rows = [",".join(["128"] * (8 * 8 * 3) + [str(4 if i % 3 else 6)]) for i in range(60)]
    return ("\n".join([header, *rows]) + "\n").encode()


def _npz() -> bytes:
    buffer = io.BytesIO()
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.full((20, 8, 8, 3), 128, np.uint8)
        arrays[f"{split}_labels"] = np.array([[5]] * 15 + [[4]] * 5)
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _prepare(folder: Path, name: str) -> Callable[[Path], object]:
    from hamtune.api import prepare_data

    return lambda path: prepare_data(folder if name == "HAM10000_metadata.csv" else path, size=8, progress=False)


def _space(path: Path) -> object:
    from hamtune.api import load_space

    return load_space(path)


def _results(path: Path) -> object:
    from hamtune.api import load_results

    return load_results(path.parent)


def _chosen(path: Path) -> object:
    from hamtune.results.chosen import read_chosen

    return read_chosen(path.parent)


READERS: dict[str, tuple[str, Callable[[], bytes], int, Callable[[Path, str], Callable[[Path], object]]]] = {
    # reader: (file name, good content, its size cap, folder -> call)
    "release metadata": ("HAM10000_metadata.csv", _metadata_csv, MAX_TEXT_BYTES, _prepare),
    "ISIC 2018 ground truth": ("ISIC2018_Task3_Test_GroundTruth.csv", _isic_csv, MAX_TEXT_BYTES, _prepare),
    "Kaggle pixel table": ("hmnist_8_8_RGB.csv", _hmnist_csv, MAX_SOURCE_BYTES, _prepare),
    "DermaMNIST arrays": ("dermamnist.npz", _npz, MAX_SOURCE_BYTES, _prepare),
    "search space": ("space.yaml", lambda: b"name: x\nparams: {}\n", 1 << 20, lambda folder, name: _space),
    "trials table": ("trials.parquet", lambda: b"PAR1" + b"\0" * 64 + b"PAR1", MAX_TEXT_BYTES, lambda folder, name: _results),
    "chosen record": ("chosen.json", lambda: b'{"version": 1}', 1 << 20, lambda folder, name: _chosen),
}


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer within {SECONDS} s")


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_refuses_every_hostile_file_in_one_line_and_in_time(tmp_path, reader):
    name, good, cap, make = READERS[reader]
    failures = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for kind, build in KINDS.items():
            folder = tmp_path / kind.replace(" ", "-").replace("/", "")
            folder.mkdir()
            path = folder / name
            build(path, good(), cap)
            signal.alarm(SECONDS)
            try:
                make(folder, name)(path)
                failures.append(f"{kind}: accepted")
            except HamtuneError as exc:
                if "\n" in str(exc):
                    failures.append(f"{kind}: a message of several lines")
            except Hang as exc:
                failures.append(f"{kind}: {exc}")
            except Exception as exc:
                failures.append(f"{kind}: {type(exc).__name__}: {exc}")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not failures, "\n".join(failures)


def _png_bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")  # a few hundred kB that claims 400 megapixels
    return buffer.getvalue()


def _jpeg_claiming(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 120, 90)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"\xff\xc0") + 5  # the frame header's height, then width
    data[at : at + 4] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)  # a few hundred bytes that claim 4 gigapixels


def test_bombs_and_broken_images_are_skipped_with_their_reasons_and_the_rest_is_scored(sweep_results, tmp_path):
    from hamtune.api import export_trial, write_scores

    bundle = export_trial(sweep_results, tmp_path / "bundle").directory
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (96, 72), (180, 120, 100)).save(images / "good.jpg")
    (images / "bomb.png").write_bytes(_png_bomb())
    (images / "claims-65000.jpg").write_bytes(_jpeg_claiming(65000, 65000))
    (images / "cut.jpg").write_bytes((images / "good.jpg").read_bytes()[:300])
    os.mkfifo(images / "fifo.jpg")
    (images / "zero.jpg").symlink_to("/dev/zero")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        scored = write_scores(bundle, images, out=tmp_path / "scores.csv")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert list(scored.table["image"].map(lambda p: Path(p).name)) == ["good.jpg"]
    skipped = {Path(path).name: why for path, why in scored.problems}
    assert set(skipped) == {"bomb.png", "claims-65000.jpg", "cut.jpg", "fifo.jpg", "zero.jpg"}, skipped
    assert "bomb" in skipped["bomb.png"] and "bomb" in skipped["claims-65000.jpg"], skipped


def test_decoding_workers_are_capped_by_the_work_and_the_cores(release_dir):
    from hamtune.workers import capped

    assert capped(10**6, 3) == min(3, os.cpu_count() or 1)
    assert capped(10**6, 10**6) == (os.cpu_count() or 1)
    assert capped(0, 5) == 1
