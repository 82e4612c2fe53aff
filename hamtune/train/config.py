"""TrainConfig: every knob of one training run, validated once at the edge, plus the named presets."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Literal

from hamtune.data import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from hamtune.errors import HamtuneError, UsageError
from hamtune.train.scores import PARTS

if TYPE_CHECKING:  # imported where a model is built: reading a config needs no torch
    from hamtune.models.spec import ModelSpec

Kind = Literal["ae", "vae"]
Arch = Literal["mlp", "cnn"]
Norm = Literal["none", "batch", "group"]
ReconLoss = Literal["mse", "bce", "ssim", "ssim_l1"]
SSIM_LOSSES = ("ssim", "ssim_l1")  # an autoencoder's only: a VAE's ELBO needs a likelihood
Augment = Literal["none", "flips", "dihedral"]
Noise = Literal["none", "gaussian", "coarse", "mask"]
InputRange = Literal["01", "pm1"]
LrSchedule = Literal["none", "cosine"]
Rebalance = Literal["none", "weighted"]
ProtocolName = Literal["cancer", "nevus"]
Split = Literal["lesion", "official"]
Crop = Literal["center", "resize", "pad"]
Channels = Literal[1, 3]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["fp32", "bf16"]

# Inclusive bounds; anything outside is a mistake worth stopping for (an absurd lr is allowed, it diverges).
RANGES: dict[str, tuple[float, float]] = {
    "latent_dim": (1, 4096),
    "mlp_width": (4, 1 << 20),
    "mlp_depth": (1, 8),
    "cnn_channels": (4, 1024),
    "cnn_blocks": (1, 7),
    "dropout": (0.0, 0.9),
    "color_jitter": (0.0, 0.5),
    "noise_level": (0.0, 1.0),
    "beta": (0.0, 1e4),
    "kl_warmup": (0, 10_000),
    "batch_size": (2, 1 << 16),
    "eval_batch_size": (1, 1 << 16),
    "lr": (1e-8, 1e6),
    "weight_decay": (0.0, 1.0),
    "epochs": (1, 100_000),
    "patience": (0, 100_000),
    "image_size": (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    "val_fraction": (0.01, 0.5),
    "test_fraction": (0.01, 0.5),
    "max_train_images": (1, 10_000_000),
    "num_threads": (0, 1024),
    "seed": (0, 2**31 - 1),
    "split_seed": (0, 2**31 - 1),
}

# Parameters that mean nothing for some models (the other field's value is not among those listed); stored as null
# in results so comparisons stay honest.
APPLIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mlp_width": ("arch", ("mlp",)),
    "mlp_depth": ("arch", ("mlp",)),
    "cnn_channels": ("arch", ("cnn",)),
    "cnn_blocks": ("arch", ("cnn",)),
    "beta": ("kind", ("vae",)),
    "kl_warmup": ("kind", ("vae",)),
    "noise_level": ("noise", ("gaussian", "coarse", "mask")),
}

# An anomaly score is one part (train/scores.py) or several joined by '+'; several are standardised on the
# validation normals and summed (see hamtune.train.evaluate).
SCORE_PARTS = tuple(PARTS)


@dataclass(frozen=True)
class TrainConfig:
    """One training run: model shape, optimisation, data protocol and runtime, as plain values."""

    # model
    kind: Kind = "ae"
    arch: Arch = "cnn"
    latent_dim: int = 32
    mlp_width: int = 512
    mlp_depth: int = 2
    cnn_channels: int = 32
    cnn_blocks: int = 3
    norm: Norm = "batch"
    dropout: float = 0.0
    beta: float = 1.0
    kl_warmup: int = 0
    recon_loss: ReconLoss = "mse"
    score: str = "mse"
    tta: bool = False
    input_range: InputRange = "01"
    # optimisation
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: LrSchedule = "none"
    epochs: int = 20
    patience: int = 0
    rebalance: Rebalance = "none"
    augment: Augment = "none"
    color_jitter: float = 0.0
    noise: Noise = "none"
    noise_level: float = 0.1
    # data and split
    protocol: ProtocolName = "cancer"
    split: Split = "lesion"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    max_train_images: int | None = None
    image_size: int = 64
    crop: Crop = "center"
    channels: Channels = 3
    # runtime
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "fp32"
    compile: bool = False
    channels_last: bool = True
    num_threads: int = 0
    eval_batch_size: int = 512
    test_every_epoch: bool = False
    preset: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> TrainConfig:
        """Build from plain data (YAML, Ray, --set strings); unknown keys and bad values name themselves."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise config_error(where, f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}")
        hints = typing.get_type_hints(cls)
        converted = {key: coerce(key, value, hints[key], where) for key, value in values.items()}
        try:
            return cls(**converted)
        except HamtuneError as exc:
            raise config_error(where, str(exc)) from None

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def at_preprocessing(self, manifest: dict) -> TrainConfig:
        """This config at a prepared cache's own preprocessing: the cache's size, crop and channels win."""
        pre = manifest["preprocess"]
        return self.replace(image_size=pre["size"], crop=pre["crop"], channels=pre["channels"])

    def model_spec(self) -> ModelSpec:
        """The part of this config the model is built from (the models never see the rest)."""
        from hamtune.models.spec import ModelSpec

        mlp = self.arch == "mlp"
        return ModelSpec(
            kind=self.kind,
            arch=self.arch,
            latent_dim=self.latent_dim,
            width=self.mlp_width if mlp else self.cnn_channels,
            depth=self.mlp_depth if mlp else self.cnn_blocks,
            norm=self.norm,
            dropout=self.dropout,
            input_range=self.input_range,
        )

    def applicable(self) -> dict:
        """All fields, with those that do not apply to this model set to None."""
        values = self.to_dict()
        for key, (other, needed) in APPLIES.items():
            if values[other] not in needed:
                values[key] = None
        return values


FUSE = ("auto", "on", "off")  # seeds of one config as one grouped model (train/fused.py); auto: on CUDA only
MAX_SEEDS = 1000  # seeds of one configuration (train --seeds, reproduce --seeds): each trains a whole model, so more is a typo


def _choices() -> dict[str, tuple]:
    """Each Literal-typed field's allowed values, from its annotation (the one place they are written)."""
    out = {}
    for name, hint in typing.get_type_hints(TrainConfig).items():
        literal = [h for h in (hint, *typing.get_args(hint)) if typing.get_origin(h) is Literal]
        if literal:
            out[name] = typing.get_args(literal[0])
    return out


CHOICES: dict[str, tuple] = _choices()


def _base_types(hint) -> tuple:
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(a for a in args if a is not type(None))
    return (hint,)


def coerce(key: str, value, hint, where: str):
    """Turn a YAML/CLI value into the field's type, or explain why it cannot be."""
    allows_none = type(None) in typing.get_args(hint)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and allows_none):
        if allows_none:
            return None
        raise config_error(where, f"{key} cannot be empty")
    base = _base_types(hint)[0]
    if typing.get_origin(base) is Literal:
        base = type(typing.get_args(base)[0])
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, (bool, int)):
                raise ValueError
            return bool(value)
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)) or not math.isfinite(number) or number != int(number):
                raise ValueError
            return int(number)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if base is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
    except (TypeError, ValueError, OverflowError):
        pass
    raise config_error(where, f"{key} must be {base.__name__}, got {value!r}")


def config_error(where: str, message: str) -> HamtuneError:
    """A bad value the caller typed (`--set`, an API keyword such as hamtune.train()'s) is a usage error (exit 2);
    one read from a file or a results folder is wrong data (exit 1)."""
    typed = where == "--set" or where.endswith("()")
    return (UsageError if typed else HamtuneError)(f"{where}: {message}")


def check_field(key: str, value) -> None:
    """One field on its own: a known choice, inside its range."""
    if key == "preset" and value is not None and value not in PRESETS:
        raise HamtuneError(f"unknown preset {value!r}; choose one of {', '.join(PRESETS)}")
    if key == "score":
        check_score(value)
    if key in CHOICES and value not in CHOICES[key]:
        raise HamtuneError(f"{key} must be one of {', '.join(map(str, CHOICES[key]))}, got {value!r}")
    if key in RANGES and value is not None:
        low, high = RANGES[key]
        if not low <= value <= high:
            raise HamtuneError(f"{key} must be between {low:g} and {high:g}, got {value!r}")


def field_value(key: str, value, where: str):
    """Coerce and check a single TrainConfig value, as a search space declares it."""
    hints = typing.get_type_hints(TrainConfig)
    if key not in hints:
        raise config_error(where, f"unknown key {key!r}; valid keys: {', '.join(hints)}")
    value = coerce(key, value, hints[key], where)
    try:
        check_field(key, value)
    except HamtuneError as exc:
        raise config_error(where, str(exc)) from None
    return value


def score_parts(score: str) -> tuple[str, ...]:
    return tuple(score.split("+"))


def check_score(score: str, kind: str | None = None) -> None:
    """`mse`, `ssim`, `latent`, `elbo` (VAE only) or several joined by '+', each once."""
    parts = score_parts(score)
    if any(p not in SCORE_PARTS for p in parts) or len(set(parts)) != len(parts):
        raise HamtuneError(f"score must be one of {', '.join(SCORE_PARTS)} or several joined by '+' (e.g. mse+latent), got {score!r}")
    if "elbo" in parts and kind is not None and kind != "vae":
        raise HamtuneError(f"score={score} needs kind=vae (an autoencoder has no ELBO)")


# The fields validate()'s rules between fields read: a search space checks every combination of their values when it
# is read (sweep/space.py), so a broken rule is an error naming the file, not failed trials. A new rule adds its fields.
RULE_KEYS = ("kind", "score", "recon_loss", "input_range", "val_fraction", "test_fraction")


def validate(config: TrainConfig) -> None:
    for key in CHOICES.keys() | RANGES.keys() | {"preset"}:
        check_field(key, getattr(config, key))
    check_score(config.score, config.kind)
    if config.recon_loss == "bce" and config.input_range != "01":
        raise HamtuneError("recon_loss=bce needs input_range=01 (BCE compares values in [0, 1])")
    if config.recon_loss in SSIM_LOSSES and config.kind != "ae":
        raise HamtuneError(f"recon_loss={config.recon_loss} needs kind=ae (a VAE's ELBO needs a likelihood: mse or bce)")
    if config.val_fraction + config.test_fraction >= 0.9:
        raise HamtuneError("val_fraction + test_fraction must leave some training data")


PRESETS: dict[str, dict] = {
    "seed-ae": dict(
        kind="ae",
        arch="mlp",
        mlp_width=512,
        mlp_depth=2,
        latent_dim=64,
        norm="none",
        batch_size=32,
        lr=1e-3,
        weight_decay=0.0,
        epochs=100,
        image_size=28,
        protocol="cancer",
    ),
    "seed-vae": dict(
        kind="vae",
        arch="mlp",
        mlp_width=512,
        mlp_depth=2,
        latent_dim=120,
        norm="none",
        batch_size=32,
        lr=1e-3,
        weight_decay=0.0,
        epochs=100,
        image_size=28,
        beta=1.0,
        max_train_images=5000,
        protocol="cancer",
    ),
    "medianomaly-ae": dict(
        kind="ae",
        arch="cnn",
        latent_dim=16,
        cnn_channels=32,
        cnn_blocks=4,
        image_size=64,
        channels=1,
        input_range="pm1",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=64,
        score="mse",
        epochs=250,
        protocol="nevus",
    ),
    "medianomaly-vae": dict(
        kind="vae",
        arch="cnn",
        latent_dim=16,
        cnn_channels=32,
        cnn_blocks=4,
        image_size=64,
        channels=1,
        input_range="pm1",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=64,
        score="mse",
        beta=0.005,
        epochs=250,
        protocol="nevus",
    ),
    "cnn-ae": dict(kind="ae", arch="cnn", latent_dim=32, cnn_channels=32, cnn_blocks=3, image_size=64),
    # The val-chosen winner of search_spaces/ham10000-real.yaml on 5,984 real HAM10000 images (nevus protocol), its
    # best validation epoch (the first) included: a CNN AE scoring 1 - SSIM of its reconstruction (docs/measurements.md).
    "ham-best": dict(
        kind="ae",
        arch="cnn",
        latent_dim=77,
        cnn_channels=32,
        cnn_blocks=3,
        lr=7.470118507210607e-4,
        batch_size=64,
        score="ssim",
        epochs=1,
        image_size=64,
        protocol="nevus",
    ),
    # The cancer protocol's val-chosen winner of the same sweep (one of its starting points), trained to its best
    # validation epoch (the third): a CNN AE scoring the standardised sum of pixel MSE and 1 - SSIM (docs/measurements.md).
    "ham-best-cancer": dict(
        kind="ae",
        arch="cnn",
        latent_dim=32,
        cnn_channels=32,
        cnn_blocks=3,
        lr=1e-3,
        batch_size=64,
        score="mse+ssim",
        epochs=3,
        image_size=64,
        protocol="cancer",
    ),
}


def build_config(values: dict, where: str = "--set") -> TrainConfig:
    """A config from plain values; a `preset` among them supplies defaults that the other values override."""
    values = dict(values)
    name = values.get("preset")
    if name is not None and name not in PRESETS:
        raise config_error(where, f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig.from_dict({**(PRESETS[name] if name is not None else {}), **values}, where)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`--set key=value` pairs to a dict; values stay strings until TrainConfig coerces them."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out
