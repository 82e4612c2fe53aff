"""Each convolution of a CNN preset, forward + backward: K separate convolutions vs one with groups=K.

Explains what the fused seeds (hamtune.train.fused) gain or lose per layer on this CPU: a fused
group runs every convolution of K models as one grouped convolution; oneDNN has its own kernels
for grouped convolutions, which need not be as fast per FLOP as the plain ones. Both sides in
channels_last, interleaved, at the thread count given.

  python benchmarks/grouped_conv.py --threads 1
  python benchmarks/grouped_conv.py --threads 2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from hamtune.models.cnn import channel_plan, spatial_plan
from hamtune.train.config import build_config

NAME = "grouped_conv"


def layers(preset: str, size: int) -> list[dict]:
    """The preset CNN's 3x3 convolutions: encoder (stride 2) then decoder (after 2x upsampling, stride 1)."""
    config = build_config({"preset": preset, "image_size": size})
    plan, sizes = channel_plan(config.cnn_channels, config.cnn_blocks), spatial_plan(size, config.cnn_blocks)
    out = [{"c_in": c_in, "c_out": c_out, "px": px, "stride": 2} for c_in, c_out, px in zip([config.channels] + plan, plan, sizes)]
    reversed_plan = plan[::-1]
    out += [
        {"c_in": c_in, "c_out": c_out, "px": px, "stride": 1} for c_in, c_out, px in zip(reversed_plan, reversed_plan[1:], sizes[-2:0:-1])
    ]
    return out


def timer(layer: dict, batch: int, k: int, grouped: bool, steps: int):
    """Seconds per forward + backward of K models' copies of one layer, separate or grouped."""
    layout = torch.channels_last
    c_in, c_out, groups = layer["c_in"], layer["c_out"], k if grouped else 1
    n_in, n_out = (k * c_in, k * c_out) if grouped else (c_in, c_out)
    x = torch.rand(batch, n_in, layer["px"], layer["px"]).contiguous(memory_format=layout).requires_grad_()
    w = torch.rand(n_out, c_in, 3, 3).contiguous(memory_format=layout).requires_grad_()

    def once() -> None:
        F.conv2d(x, w, stride=layer["stride"], padding=1, groups=groups).sum().backward()

    def measure() -> float:
        began = time.perf_counter()
        for _ in range(steps):
            for _ in range(1 if grouped else k):
                once()
        return (time.perf_counter() - began) / steps

    return measure


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default="ham-best")
    parser.add_argument("--k", type=int, default=4, help="models side by side (default 4)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3, quick 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size, batch = (28, 8) if args.quick else (64, 64)
    repeats, steps = args.repeats or (1 if args.quick else 3), 1 if args.quick else 3
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    rows = []
    for layer in layers(args.preset, size):
        times = common.interleaved(
            {"separate": timer(layer, batch, args.k, False, steps), "grouped": timer(layer, batch, args.k, True, steps)}, repeats, warmup=1
        )
        rows.append(
            {
                **layer,
                "separate_ms": common.median(times["separate"]) * 1e3,
                "grouped_ms": common.median(times["grouped"]) * 1e3,
                "grouped_vs_separate": common.ratio(times["grouped"], times["separate"])["median"],
                "times": times,
            }
        )
    print(
        common.table(
            rows,
            [
                ("in", "c_in"),
                ("out", "c_out"),
                ("px", "px"),
                ("stride", "stride"),
                (f"{args.k} separate ms", "separate_ms"),
                ("grouped ms", "grouped_ms"),
                ("grouped/separate", "grouped_vs_separate"),
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
        "preset": args.preset,
        "k": args.k,
        "batch": batch,
        "threads": args.threads,
        "layers": rows,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
