"""TrainConfig's field names, grouped by concern, on the ground floor: results and reports read rows by these
names without importing `train/` (and torch with it). `train/config.py` declares the fields in this order and a
test holds the two together."""

from __future__ import annotations

GROUPS: dict[str, tuple[str, ...]] = {
    "model": (
        "kind",
        "arch",
        "latent_dim",
        "mlp_width",
        "mlp_depth",
        "cnn_channels",
        "cnn_blocks",
        "norm",
        "dropout",
        "beta",
        "kl_warmup",
        "recon_loss",
        "score",
        "tta",
        "input_range",
    ),
    "optimisation": (
        "batch_size",
        "lr",
        "weight_decay",
        "lr_schedule",
        "epochs",
        "patience",
        "rebalance",
        "augment",
        "color_jitter",
        "noise",
        "noise_level",
    ),
    "data": ("protocol", "split", "val_fraction", "test_fraction", "split_seed", "max_train_images", "image_size", "crop", "channels"),
    "runtime": ("seed", "device", "precision", "compile", "channels_last", "num_threads", "eval_batch_size", "test_every_epoch", "preset"),
}
FIELDS = tuple(name for group in GROUPS.values() for name in group)
# whole numbers: Parquet gives an int column with gaps back as floats, and a reader turns them into ints again
WHOLE = frozenset(
    {
        "latent_dim",
        "mlp_width",
        "mlp_depth",
        "cnn_channels",
        "cnn_blocks",
        "kl_warmup",
        "batch_size",
        "epochs",
        "patience",
        "split_seed",
        "max_train_images",
        "image_size",
        "channels",
        "seed",
        "num_threads",
        "eval_batch_size",
    }
)
MACHINE = ("device", "num_threads")  # runtime fields that say where a run ran, not what it trained
SPLIT_KEYS = GROUPS["data"]  # what decides which images are train, val and test
# what a baseline takes of a TrainConfig: the split, and the seed of its randomness (the rest describe a network
# and are null for a classical row)
DATA_KEYS = (*SPLIT_KEYS, "seed")
