"""Train K seeds of one config as one grouped model (hamtune.models.grouped): one step for all of them.

Each member is a `loop.Run` built exactly as a lone run builds it (its seed, so its initial weights,
optimiser and scheduler), whose parameters, buffers and AdamW moments then become views into the
group's tensors. So evaluation, best-epoch bookkeeping, checkpoints and results rows are the lone
run's own code on the member's Run, and give what the lone run gives up to float summation order.
A member that stops (patience, divergence, last epoch) leaves the group: every member's tensors
are copied out and the group is rebuilt from those still training, so a stopped one never changes.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import torch

from hamtune.data.prepare import Prepared
from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError, first_line
from hamtune.models import Autoencoder, build_model
from hamtune.models.grouped import member_view, stack_members
from hamtune.train.augment import augment
from hamtune.train.config import TrainConfig
from hamtune.train.loop import (
    DEFAULT_SELECTION,
    OnEpoch,
    Run,
    RunResult,
    Selection,
    augment_draws,
    build_run,
    close_epoch,
    epoch_order,
    finish,
    is_out_of_memory,
    kl_weight,
    make_optimizer,
    memory_format,
    out_of_patience,
    resolve_device,
    restore,
    too_few_images,
    train_weights,
)
from hamtune.train.losses import per_image_terms, training_loss
from hamtune.train.tensors import to_input

log = logging.getLogger(__name__)

SEED_ONLY = ("seed", "preset")  # the fields members of one group may differ in


def unfusable(configs: list[TrainConfig]) -> str:
    """Why these configs cannot train as one group, or '' when they can.

    A group needs one architecture and shape, so the configs may differ only in their seed. A
    VAE's sampling noise and dropout masks come from the global RNG, which the members of a group
    would share: they would no longer train as they do alone, so they run one after another."""
    first = configs[0]
    base = {k: v for k, v in first.to_dict().items() if k not in SEED_ONLY}
    if len(configs) < 2:
        return "a group needs at least 2 configs"
    if any({k: v for k, v in c.to_dict().items() if k not in SEED_ONLY} != base for c in configs[1:]):
        return "the configs differ in more than their seed"
    if first.arch != "cnn":
        return f"arch={first.arch}: only CNNs have a grouped form"
    if first.kind != "ae":
        return "kind=vae: the sampling noise would not be each seed's own"
    if first.dropout > 0:
        return "dropout > 0: the dropout masks would not be each seed's own"
    if first.noise != "none":
        return f"noise={first.noise}: the grouped step trains on clean inputs"
    if first.compile or first.precision != "fp32":
        return "compile and bf16 are single-model options"
    return ""


def why_not_fused(fuse: str, configs: list[TrainConfig], on_cuda: bool) -> str:
    """'' when these configs train as one group under the `fuse` setting (auto | on | off), else why not."""
    if fuse == "off":
        return "fuse=off"
    why = unfusable(configs)
    if not why and fuse == "auto" and not on_cuda:
        return "on CPU one seed after another measured faster than the fused step (benchmarks/README.md section 8); fuse=on fuses anyway"
    return why


@dataclass
class Group:
    """The members still training and the grouped model and optimiser their tensors are views of."""

    members: list[Run]
    model: Autoencoder | None
    optimizer: torch.optim.Optimizer | None

    def pairs(self):
        """(grouped tensor, each member's tensor) for every parameter and buffer, in module order."""
        names = [dict(chain(m.model.named_parameters(), m.model.named_buffers())) for m in self.members]
        for name, grouped in chain(self.model.named_parameters(), self.model.named_buffers()):
            yield grouped, [n[name] for n in names]

    def share_state(self) -> None:
        """Point each member's optimiser state at its slice of the group's (created at the first step)."""
        k = len(self.members)
        assert self.optimizer is not None  # regroup sets it before sharing
        for grouped, singles in self.pairs():
            state = self.optimizer.state.get(grouped)
            if not state:
                continue
            for i, (run, single) in enumerate(zip(self.members, singles)):
                run.optimizer.state[single] = {
                    key: value if value.dim() == 0 else member_view(value, single.shape, k, i) for key, value in state.items()
                }


def _own_storage(run: Run) -> None:
    """Give a member's weights, buffers and optimiser state storage of their own (out of a group)."""
    for tensor in chain(run.model.parameters(), run.model.buffers()):
        tensor.data = tensor.data.clone()
    for state in run.optimizer.state.values():
        for key, value in state.items():
            state[key] = value.clone()


def regroup(members: list[Run], shape: tuple[int, int, int], device: torch.device) -> Group:
    """A grouped model and optimiser holding these members' current weights and AdamW state; the
    members' tensors become views of them. Every member's tensors are copied out first."""
    for run in members:
        _own_storage(run)
    if not members:
        return Group([], None, None)
    config, k = members[0].config, len(members)
    with torch.device("meta"):
        model = build_model(config.model_spec(), shape, models=k)
    model = model.to_empty(device=device)
    group = Group(members, model, None)
    layout = memory_format(config)
    for grouped, singles in group.pairs():
        stacked = stack_members([s.data for s in singles], grouped.shape)
        grouped.data = stacked.contiguous(memory_format=layout) if stacked.dim() == 4 else stacked
        for i, single in enumerate(singles):
            single.data = member_view(grouped.data, single.shape, k, i)
    group.optimizer = make_optimizer(model, config, device)
    group.optimizer.param_groups[0]["lr"] = members[0].optimizer.param_groups[0]["lr"]
    for grouped, singles in group.pairs():
        states = [run.optimizer.state.get(single, {}) for run, single in zip(members, singles)]
        if all(states):
            group.optimizer.state[grouped] = {
                key: states[0][key].clone() if states[0][key].dim() == 0 else stack_members([s[key] for s in states], grouped.shape)
                for key in states[0]
            }
    group.share_state()
    return group


def group_input(images: torch.Tensor, rows: torch.Tensor, config: TrainConfig, draws: list[torch.Generator]) -> torch.Tensor:
    """The group's batch (B, K*C, H, W) from each member's rows (K, B): member k's images in channels [k*C, (k+1)*C)."""
    if config.augment == "none" and config.color_jitter == 0:
        gathered = images[rows].permute(1, 2, 3, 0, 4).flatten(3)  # (B, H, W, K*C)
        return to_input(gathered, config.input_range)
    views = [
        augment(to_input(images[r], config.input_range), config.augment, config.color_jitter, config.input_range, g)
        for r, g in zip(rows, draws)
    ]
    return torch.cat(views, 1)


def member_losses(recon: torch.Tensor, x: torch.Tensor, k: int, config: TrainConfig) -> torch.Tensor:
    """Each member's training loss, (K,), by the lone run's own loss code on its channels."""
    pixels = x[:, : x.shape[1] // k].numel() // len(x)
    losses = []
    for r, v in zip(recon.chunk(k, 1), x.chunk(k, 1)):
        terms = per_image_terms(r, v, None, None, config.recon_loss, config.input_range)  # an AE: no KL term
        losses.append(training_loss(terms, False, config.recon_loss, 0.0, pixels))
    return torch.stack(losses)


def group_step(group: Group, x: torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
    """One optimiser step of every member on the group's batch `x` (through `model`, e.g. a compiled copy of the
    group's); each member's loss, (K,)."""
    assert group.model is not None and group.optimizer is not None  # a group with members has both
    losses = member_losses((model or group.model)(x)[0], x, len(group.members), group.members[0].config)
    group.optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    group.optimizer.step()
    return losses.detach()


def group_epoch(group: Group, images: torch.Tensor, train_rows: torch.Tensor, weights: torch.Tensor | None) -> list[float]:
    """One epoch of every member, each on its own sample order and augmentation draws; their mean losses."""
    members, k = group.members, len(group.members)
    assert group.model is not None and group.optimizer is not None  # a group with members has both
    config, epoch = members[0].config, members[0].epoch
    orders = torch.stack([epoch_order(m.config, len(train_rows), weights, epoch) for m in members]).to(images.device)
    draws = [augment_draws(m.config, epoch) for m in members]
    group.model.train()
    total = torch.zeros(k, device=images.device)
    batches = 0
    for start in range(0, orders.shape[1], config.batch_size):
        rows = train_rows[orders[:, start : start + config.batch_size]]
        if rows.shape[1] < 2:
            continue
        total += group_step(group, group_input(images, rows, config, draws))
        batches += 1
    for run in members:
        if run.scheduler is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the member's own optimiser never steps: the group's does
                run.scheduler.step()
    group.optimizer.param_groups[0]["lr"] = members[0].optimizer.param_groups[0]["lr"]
    return (total / max(batches, 1)).tolist()


@dataclass
class Member:
    """One config of a group: its run and how it stands (running until it leaves the group)."""

    run: Run
    status: str = "running"  # running | completed | diverged | failed
    reason: str = ""


MEMBER_STATES = ("running", "completed", "diverged", "failed")
GROUP_FILE = "group.json"  # written last: a checkpoint holding it holds every member's folder


def member_folder(directory: Path, index: int) -> Path:
    return Path(directory) / f"member-{index}"


def save_group(members: list[Member], directory: Path) -> None:
    """Each member's checkpoint in member-<i>/ and, last, their seeds and states in group.json: what a
    resumed group and the sweep's recorder read back."""
    for index, member in enumerate(members):
        member.run.save(member_folder(directory, index))
    states = [{"seed": m.run.config.seed, "status": m.status, "reason": m.reason} for m in members]
    (Path(directory) / GROUP_FILE).write_text(json.dumps({"members": states}, indent=1))


def read_group(directory: Path) -> list[dict]:
    """group.json's members (seed, status, reason), checked: a resumed group trusts them."""
    path = Path(directory) / GROUP_FILE
    try:
        states = json.loads(path.read_text())["members"]
        ok = isinstance(states, list) and all(
            isinstance(m, dict) and type(m.get("seed")) is int and m.get("status") in MEMBER_STATES and isinstance(m.get("reason"), str)
            for m in states
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HamtuneError(f"{path}: not a fused group's state ({first_line(exc, 120)})") from None
    if not ok:
        raise HamtuneError(f"{path}: 'members' must be a list of {{seed: int, status: {' | '.join(MEMBER_STATES)}, reason: str}}")
    return states


OnGroupEpoch = Callable[[list[Member]], None]


def train_group(
    configs: list[TrainConfig],
    data: Prepared,
    on_epoch: OnEpoch | None = None,
    test_data: Prepared | None = None,
    selection: Selection = DEFAULT_SELECTION,
    on_group_epoch: OnGroupEpoch | None = None,
    resume_from: Path | None = None,
) -> list[RunResult]:
    """Train configs that differ only in their seed (see `unfusable`) as one grouped model; return
    each one's RunResult as `loop.train` would return it alone. Each result's wall time is the group's.

    `on_epoch(metrics, run)` follows each member's epoch; `on_group_epoch(members)` follows each group
    epoch, once every member's state is settled (what `save_group` checkpoints); `resume_from` is such a
    checkpoint: members that had left stay out, the others go on from their epoch."""
    why = unfusable(configs)
    if why:
        raise ValueError(f"these configs cannot train as a group: {why}")
    started = time.perf_counter()
    config = configs[0]
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    protocol = get_protocol(config.protocol)
    saved = read_group(resume_from) if resume_from is not None else None
    if saved is not None and [m["seed"] for m in saved] != [c.seed for c in configs]:
        raise HamtuneError(f"{resume_from}: holds seeds {[m['seed'] for m in saved]}, not this group's {[c.seed for c in configs]}")
    members: list[Member] = []
    for index, member_config in enumerate(configs):
        run, plan = build_run(member_config, data, test_data, device)
        member = Member(run)
        if saved is not None:
            assert resume_from is not None  # saved is read from it
            restore(run, member_folder(resume_from, index), selection)
            member.status, member.reason = saved[index]["status"], saved[index]["reason"]
        run.rng = torch.get_rng_state()  # what the lone run's global RNG holds after its build: AEs draw nothing more
        members.append(member)
    train_rows = torch.as_tensor(plan.train, device=device)
    weights = train_weights(config, data, plan)
    images = members[0].run.val.images
    _, h, w, c = data.images.shape
    short = too_few_images(len(train_rows), config)
    if short:
        for member in members:
            member.status, member.reason = "failed", short
    training = [m for m in members if m.status == "running"]
    if len({m.run.epoch for m in training}) > 1:
        raise HamtuneError(f"{resume_from}: its training members are at different epochs; start the group again")
    group = regroup([m.run for m in training], (c, h, w), device)
    try:
        while group.members:
            epoch_started = time.perf_counter()
            losses = group_epoch(group, images, train_rows, weights)
            train_seconds = time.perf_counter() - epoch_started
            group.share_state()
            for member, loss in zip(training, losses):
                run = member.run
                beta = kl_weight(run.config, run.epoch + 1)
                reason = close_epoch(run, protocol, selection, loss, beta, epoch_started, train_seconds, len(train_rows))
                if reason:
                    member.status, member.reason = "diverged", reason
                    continue
                if on_epoch is not None:
                    on_epoch(run.history[-1], run)
                if run.epoch >= run.config.epochs or out_of_patience(run):
                    member.status = "completed"
            if on_group_epoch is not None:
                on_group_epoch(members)
            if any(m.status != "running" for m in training):
                training = [m for m in training if m.status == "running"]
                group = regroup([m.run for m in training], (c, h, w), device)
    except Exception as exc:  # as in loop.train: only memory exhaustion is an expected outcome
        if not is_out_of_memory(exc):
            raise
        for member in training:
            member.status, member.reason = "failed", f"out of memory: {first_line(exc, 300)}"
        log.warning("group of %d failed: out of memory: %s", len(training), first_line(exc, 300))
        regroup([], (c, h, w), device)
    return [
        finish(m.run, "failed" if m.status == "running" else m.status, m.reason, started, device, selection, m.run.config) for m in members
    ]
