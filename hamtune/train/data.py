"""Which images a run trains, validates and tests on: lesion-grouped splits under an anomaly protocol."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hamtune.data.prepare import Prepared
from hamtune.data.splits import get_protocol, official_splits, split_by_lesion
from hamtune.errors import HamtuneError


@dataclass
class SplitPlan:
    """Row indices per split; training holds normal images only, val and test hold both kinds."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    labels: np.ndarray  # per row of the main data: 0 normal, 1 anomaly, -1 outside the protocol
    test_labels: np.ndarray  # per row of the test data (the main data, or an external test set)


def plan_splits(data: Prepared, config, test_data: Prepared | None = None) -> SplitPlan:
    """Split the main data; with an external test set, its in-protocol rows are the whole test split."""
    protocol = get_protocol(config.protocol)
    labels = protocol.labels(data.meta["dx"].to_numpy())
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
        check_no_overlap(data, test_data)
        test_labels = protocol.labels(test_data.meta["dx"].to_numpy())
        test_split = test_data.meta.get("official_split")
        in_test = np.ones(len(test_labels), bool) if test_split is None else (test_split.fillna("test") == "test").to_numpy()
        test = np.flatnonzero(in_test & (test_labels >= 0))
    for name, rows, of in (("train", train, labels), ("val", val, labels), ("test", test, test_labels)):
        if len(rows) == 0:
            raise HamtuneError(f"the {name} split is empty under protocol {protocol.name!r}; the dataset is too small")
        if name != "train" and len(np.unique(of[rows])) < 2:
            raise HamtuneError(f"the {name} split has only one class under protocol {protocol.name!r}; AUROC is undefined")
    return SplitPlan(train, val, test, labels, test_labels)


def check_no_overlap(data: Prepared, test_data: Prepared) -> None:
    """An image in both the training data and the external test set would make the test dishonest."""
    both = np.intersect1d(data.meta["image_id"].to_numpy(str), test_data.meta["image_id"].to_numpy(str))
    if len(both):
        raise HamtuneError(
            f"{len(both)} image(s) are both in the training data ({data.name}) and the external test set "
            f"({test_data.name}), e.g. {', '.join(both[:5])}; remove them from one side"
        )
