"""One CNN training step under each speed option hamtune could use on a CPU, against the sgemm peak.

The options the loop could take for the 64 px CNN AE (batch 64), measured side by side and
interleaved with a float32 2048x2048 sgemm at the same thread count:

  NCHW                        the model in torch's default layout
  channels_last               hamtune's default for CNNs
  channels_last + bf16        torch.autocast("cpu", bfloat16) around the forward pass
  channels_last + compile     torch.compile (inductor); its compilation time is reported apart

  python benchmarks/step_options.py --threads 1
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from train_throughput import SGEMM_N, sgemm, step_flops

from hamtune.models import build_model
from hamtune.train.config import TrainConfig
from hamtune.train.losses import per_image_terms, training_loss

NAME = "step_options"
OPTIONS = {  # name: (channels_last, bf16, compile)
    "NCHW": (False, False, False),
    "channels_last": (True, False, False),
    "channels_last + bf16": (True, True, False),
    "channels_last + compile": (True, False, True),
}


def make_step(config: TrainConfig, channels_last: bool, bf16: bool, compiled: bool) -> Callable[[], None]:
    """One training step (forward, loss, backward, fused AdamW) on a fixed random batch."""
    shape = (config.channels, config.image_size, config.image_size)
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(config.model_spec(), shape).to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    forward = torch.compile(model) if compiled else model
    x = torch.rand(config.batch_size, *shape).contiguous(memory_format=layout)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            recon, mu, logvar = forward(x)
        terms = per_image_terms(recon.float(), x, mu.float(), logvar.float(), config.recon_loss)
        loss = training_loss(terms, model.variational, config.recon_loss, 1.0, x[0].numel())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="default 64 (quick 8)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default 10, quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 4, quick 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch = args.batch or (8 if args.quick else 64)
    steps, repeats = args.steps or (1 if args.quick else 10), args.repeats or (1 if args.quick else 4)
    size = 28 if args.quick else 64
    config = TrainConfig(kind="ae", arch="cnn", cnn_channels=32, cnn_blocks=3, latent_dim=32, image_size=size, batch_size=batch)
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    options = [name for name in OPTIONS if not (args.quick and OPTIONS[name][2])]
    first_s, timers = {}, {}
    for name in options:
        step = make_step(config, *OPTIONS[name])
        began = time.perf_counter()
        step()  # compiles, for the compiled option
        first_s[name] = time.perf_counter() - began

        def timed(step=step) -> float:
            began = time.perf_counter()
            for _ in range(steps):
                step()
            return (time.perf_counter() - began) / steps

        timers[name] = timed
    timers["sgemm"] = sgemm(torch.device("cpu"))
    times = common.interleaved(timers, repeats, warmup=1)
    peak = 2 * SGEMM_N**3 / common.median(times.pop("sgemm")) / 1e9
    flops = step_flops(config, (config.channels, size, size), torch.device("cpu"))
    rows = []
    for name in options:
        per_step = common.median(times[name])
        rows.append(
            {
                "option": name,
                "img_s": batch / per_step,
                "gflops": flops * batch / per_step / 1e9,
                "share": f"{flops * batch / per_step / 1e9 / peak:.0%}",
                "vs_nchw": common.ratio(times["NCHW"], times[name])["median"],
                "first_step_s": first_s[name],
            }
        )
    print(
        common.table(
            rows,
            [
                ("option", "option"),
                ("img/s", "img_s"),
                ("GFLOP/s", "gflops"),
                ("of sgemm peak", "share"),
                ("vs NCHW", "vs_nchw"),
                ("first step s (compilation)", "first_step_s"),
            ],
        )
    )
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "config": config.to_dict(),
        "step_mflop_per_image": flops / 1e6,
        "sgemm_gflops": peak,
        "seconds_per_step": times,
        "first_step_s": first_s,
        "table": rows,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
