"""The methods card names the training loss of every recon_loss a config can hold: none is 'unknown', no two alike."""

from __future__ import annotations

import typing

from hamtune.report.methods import UNKNOWN, _training
from hamtune.train.config import ReconLoss


def test_every_reconstruction_loss_is_named_on_the_methods_card():
    named = {}
    for recon_loss in typing.get_args(ReconLoss):
        config = {"kind": "ae", "arch": "cnn", "recon_loss": recon_loss, "augment": "none", "rebalance": "none"}
        named[recon_loss] = next(line for line in _training(config) if line.startswith("Loss: ")).split(";")[0]
    assert not [loss for loss in named.values() if UNKNOWN in loss] and len(set(named.values())) == len(named), named
