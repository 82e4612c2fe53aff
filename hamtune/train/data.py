"""Which images a run trains, validates and tests on: lesion-grouped splits under an anomaly protocol."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hamtune.data.prepare import Prepared
from hamtune.data.splits import get_protocol, official_splits, split_by_lesion
from hamtune.errors import HamtuneError
from hamtune.train.config import TrainConfig


@dataclass
class SplitPlan:
    """Row indices per split; training holds normal images only, val and test hold both kinds."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    labels: np.ndarray  # per row of the main data: 0 normal, 1 anomaly, -1 outside the protocol
    test_labels: np.ndarray  # per row of the test data (the main data, or an external test set)


def plan_splits(data: Prepared, config: TrainConfig, test_data: Prepared | None = None) -> SplitPlan:
    """Split the main data; with an external test set, its in-protocol rows are the whole test split."""
    protocol = get_protocol(config.protocol)
    labels = protocol.labels(data.meta["dx"].to_numpy())
    if test_data is not None:
        check_external(data, test_data)
        if config.split != "official":
            labels[official_test_rows(data)] = -1
    if config.split == "official":
        split = official_splits(data.meta)
    else:
        test_fraction = 0.0 if test_data is not None else config.test_fraction
        fractions = (1.0 - config.val_fraction - test_fraction, config.val_fraction, test_fraction)
        split = split_by_lesion(data.meta, fractions, seed=config.split_seed)
    train = np.flatnonzero((split == "train") & (labels == 0))
    if config.max_train_images is not None and len(train) > config.max_train_images:
        rng = np.random.default_rng(config.split_seed)
        train = np.sort(rng.choice(train, config.max_train_images, replace=False))
    val = np.flatnonzero((split == "val") & (labels >= 0))
    if test_data is None:
        test_labels = labels
        test = np.flatnonzero((split == "test") & (labels >= 0))
    else:
        test_labels = protocol.labels(test_data.meta["dx"].to_numpy())
        test = np.flatnonzero(external_rows(test_data) & (test_labels >= 0))
    for name, rows, of in (("train", train, labels), ("val", val, labels), ("test", test, test_labels)):
        if len(rows) == 0:
            raise HamtuneError(f"the {name} split is empty under protocol {protocol.name!r}; the dataset is too small")
        if name != "train" and len(np.unique(of[rows])) < 2:
            raise HamtuneError(f"the {name} split has only one class under protocol {protocol.name!r}; AUROC is undefined")
    return SplitPlan(train, val, test, labels, test_labels)


def official_test_rows(data: Prepared) -> np.ndarray:
    """Rows the source itself marks as its test split (ISIC 2018, DermaMNIST); none elsewhere."""
    split = data.meta.get("official_split")
    return np.zeros(len(data.meta), bool) if split is None else (split == "test").fillna(False).to_numpy(bool)


def external_rows(test_data: Prepared) -> np.ndarray:
    """Rows an external test set contributes: its official test split where it has one, else all of it."""
    rows = official_test_rows(test_data)
    return rows if rows.any() else np.ones(len(rows), bool)


def check_external(data: Prepared, test_data: Prepared) -> None:
    """An external test set must be preprocessed like the training data, and share no image with it
    (the main data's own official test rows are left out of training, so they do not count)."""
    if test_data.preprocess != data.preprocess:
        raise HamtuneError(
            f"the external test set {test_data.name} was prepared as {test_data.preprocess} but the training data "
            f"{data.name} as {data.preprocess}; prepare both the same way"
        )
    used = data.meta["image_id"][~official_test_rows(data)]
    tested = test_data.meta["image_id"][external_rows(test_data)]
    both = np.intersect1d(used.to_numpy(str), tested.to_numpy(str))
    if len(both):
        raise HamtuneError(
            f"{len(both)} image(s) are both in the training data ({data.name}) and the external test set "
            f"({test_data.name}), e.g. {', '.join(both[:5])}; remove them from one side"
        )
