"""The output gate as a contract: every command and API function that writes, against every dangerous target (a user's
file and folder, the source dataset, an input, the working directory and the folder above it, the home folder, the
inside of a bundle and of a results folder, and a symbolic link to each), refuses before any work, as a usage error,
and leaves every byte as it was. A new writing command is covered by being added to WRITERS."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINY_SPACE, run_cli

from hamtune.errors import UsageError

pytestmark = pytest.mark.slow


@dataclass
class World:
    root: Path
    home: Path
    work: Path
    source: Path
    cache: Path
    image: Path
    run: Path
    bundle: Path

    def targets(self) -> dict[str, Path]:
        plain = {
            "a user's file": self.work / "notes.txt",
            "a user's folder": self.work / "thesis",
            "the source dataset": self.source,
            "inside the source": self.source / "HAM10000_images_part_1",
            "an input image": self.image,
            "the working directory": self.work,
            "the folder above it": self.work.parent,
            "the home folder": self.home,
            "inside a bundle": self.bundle / "inner",
            "a bundle's member": self.bundle / "weights.safetensors",
            "inside a results folder": self.run / "inner",
            "a results folder's own file": self.run / "trials.parquet",
        }
        links = self.root / "links"
        links.mkdir(exist_ok=True)
        for name, target in list(plain.items()):
            link = links / name.replace(" ", "-").replace("'", "")
            if not os.path.lexists(link):
                link.symlink_to(target)
            plain[f"a link to {name}"] = link
        return plain


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """A home folder holding a project: a dataset, its cache, a trained run, its bundle, a thesis and notes."""
    from hamtune.api import export_trial, prepare_data, train_model
    from hamtune.data.synth import synthesize_release

    root = tmp_path_factory.mktemp("world")
    home, work = root / "home", root / "home" / "projects" / "work"
    work.mkdir(parents=True)
    (home / "diary.txt").write_text("private")
    (work / "notes.txt").write_text("notes")
    (work / "thesis").mkdir()
    (work / "thesis" / "chapter1.tex").write_text("\\chapter{One}")
    source = synthesize_release(work / "ds", n=120, seed=3, image_size=(96, 72), progress=False)
    (source / ".hamtune-synth.json").unlink()  # a user's own dataset, as real data is: nothing hamtune may replace
    cache = prepare_data(source, size=28, out=work / "cache", progress=False).path
    run = train_model(
        data=str(cache),
        results=work / "results",
        name="run",
        arch="mlp",
        epochs=1,
        mlp_width=32,
        latent_dim=4,
        batch_size=16,
        progress=False,
    )
    bundle = export_trial(run, work / "models" / "b1").directory
    image = next(source.rglob("*.jpg"))
    return World(root, home, work, source, cache, image, run, bundle)


def checksums(root: Path) -> dict[str, str]:
    """Every entry under root: a file's sha256, a link's target, a folder's presence."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink():
                out[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[str(path)] = "dir"
    return out


def _results(target: Path) -> dict:
    return {"results": target.parent, "name": target.name}


def _writers(w: World) -> dict[str, Callable[[Path, bool], object]]:
    """Every API function that writes a path the caller names: (target, force) -> call."""
    import hamtune
    from hamtune.api import (
        build_ensemble,
        export_trial,
        prepare_data,
        run_baselines,
        run_sweep,
        synthesize_data,
        train_model,
        write_report,
        write_scores,
    )

    space = {**TINY_SPACE, "data": str(w.cache), "num_samples": 1, "max_epochs": 1}
    return {
        "prepare_data(out=)": lambda t, f: prepare_data(w.source, size=28, out=t, force=f, progress=False),
        "synthesize_data(out)": lambda t, f: synthesize_data(t, n=14, image_size=(64, 48), progress=False),
        "export_trial(out=)": lambda t, f: export_trial(w.run, t, force=f),
        "write_scores(out=)": lambda t, f: write_scores(w.bundle, w.image, out=t, force=f),
        "write_scores(maps=)": lambda t, f: write_scores(w.bundle, w.image, out=w.root / "scratch" / "s.csv", maps=t),
        "score(maps=)": lambda t, f: hamtune.score(w.bundle, w.image, maps=t),
        "write_report(html=)": lambda t, f: write_report(w.run, html=t),
        "train_model(results=, name=)": lambda t, f: train_model(data=str(w.cache), arch="mlp", epochs=1, progress=False, **_results(t)),
        "run_baselines(results=, name=)": lambda t, f: run_baselines(str(w.cache), methods="blur", **_results(t)),
        "build_ensemble(root=, name=)": lambda t, f: build_ensemble(w.run, top=1, root=t.parent, name=t.name),
        "run_sweep(results=, name=)": lambda t, f: run_sweep(space, **_results(t)),
        "run_sweep(storage=)": lambda t, f: run_sweep(space, results=w.root / "scratch", name=t.name, storage=str(t.parent)),
    }


WRITER_NAMES = [
    "prepare_data(out=)",
    "synthesize_data(out)",
    "export_trial(out=)",
    "write_scores(out=)",
    "write_scores(maps=)",
    "score(maps=)",
    "write_report(html=)",
    "train_model(results=, name=)",
    "run_baselines(results=, name=)",
    "build_ensemble(root=, name=)",
    "run_sweep(results=, name=)",
    "run_sweep(storage=)",
]


def test_the_list_names_every_writer(world):
    assert sorted(_writers(world)) == sorted(WRITER_NAMES)


@pytest.mark.parametrize("writer", WRITER_NAMES)
def test_every_writer_refuses_every_dangerous_target_and_changes_nothing(world, writer, monkeypatch):
    monkeypatch.setenv("HOME", str(world.home))
    monkeypatch.chdir(world.work)
    call = _writers(world)[writer]
    failures = []
    for what, target in world.targets().items():
        for force in (False, True):
            before = checksums(world.root / "home")
            try:
                call(target, force)
                failures.append(f"{what} (force={force}): accepted")
            except UsageError:
                pass
            except Exception as exc:
                failures.append(f"{what} (force={force}): {type(exc).__name__}: {exc}")
            if checksums(world.root / "home") != before:
                failures.append(f"{what} (force={force}): files changed")
    assert not failures, "\n".join(failures)


CLI = {
    "data prepare --out": lambda w, t: ["data", "prepare", w.source, "--size", "28", "--out", t, "--force"],
    "data synth": lambda w, t: ["data", "synth", t, "--n", "14"],
    "export --out": lambda w, t: ["export", w.run, "--out", t, "--force"],
    "score --out": lambda w, t: ["score", w.bundle, w.image, "--out", t, "--force"],
    "score --maps": lambda w, t: ["score", w.bundle, w.image, "--out", w.root / "scratch" / "c.csv", "--maps", t],
    "report --html": lambda w, t: ["report", w.run, "--html", t],
    "train --results --name": lambda w, t: ["train", "--data", w.cache, "--set", "arch=mlp", "--results", t.parent, "--name", t.name],
    "baselines --results --name": lambda w, t: ["baselines", w.cache, "--results", t.parent, "--name", t.name],
    "ensemble --results --name": lambda w, t: ["ensemble", w.run, "--top", "1", "--results", t.parent, "--name", t.name],
}


@pytest.mark.parametrize("command", sorted(CLI))
def test_every_writing_command_refuses_as_a_usage_error_in_one_line(world, command, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(world.home))
    monkeypatch.chdir(world.work)
    targets = world.targets()
    for what in ("a user's folder", "inside a bundle", "the working directory", "a link to the source dataset"):
        before = checksums(world.root / "home")
        code, _, err = run_cli(capsys, *CLI[command](world, targets[what]))
        assert code == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("hamtune: error: "), (what, err)
        assert checksums(world.root / "home") == before, what


def test_a_writer_still_replaces_what_it_made_and_adds_to_its_own_folder(world, monkeypatch, tmp_path):
    from hamtune.api import export_trial, write_scores

    monkeypatch.chdir(world.work)
    out = tmp_path / "b2"
    export_trial(world.run, out)
    with pytest.raises(UsageError, match="pass --force"):
        export_trial(world.run, out)
    export_trial(world.run, out, force=True)
    csv = tmp_path / "scores.csv"
    write_scores(world.bundle, world.image, out=csv, maps=tmp_path / "maps")
    write_scores(world.bundle, world.image, out=csv, maps=tmp_path / "maps")  # its own CSV and maps folder: again
    assert csv.read_text().startswith("image,score") and (tmp_path / "maps" / ".hamtune").is_file()
