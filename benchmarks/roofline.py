"""Training steps against the machine's arithmetic limit. Prints one JSON object.

For each configuration: the FLOPs of one training step (forward and backward,
counted by ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix
products, the arithmetic that a roofline bounds), the step's measured time in the
path the trainer takes (``amp``: bfloat16 autocast; ``micro_batch``: gradients
accumulated in chunks), hence the achieved FLOP/s, and the machine's peak measured
in the same process with the same threads: a large fp32 and a large bf16 matrix
product. ``utilisation_bf16`` = achieved / bf16 peak, the figure issue 19 asks to
reach 0.5 on the compute-bound configurations; ``utilisation`` is against the peak
of the dtype the step computes in. The default path is the trainer's default: bf16
autocast exactly where bf16 is native (``choose_amp``); on a CPU that emulates bf16
its peak is not measured (a 2048^3 product takes about 25 s there) and is null.
Peaks and steps are interleaved
(peak, steps, peak) and the peak is the better of the two, so a noisy neighbour
lowers the utilisation, never raises it.

``--compile`` also times the step as a long run takes it (``compile`` chosen, see
``pixelzoo.training.compiling``): the same model and batch under ``torch.compile``,
its first step (the compiling) timed apart, its steps interleaved with the eager
ones (eager, compiled, eager, ...) so that the speed-up is a ratio measured in one
run: the median of the per-pair ratios, with their range. ``--channels-last`` times the
eager step the same way with the weights and the batch in channels_last memory format
(oneDNN's preferred layout for convolutions, which saves its layout conversions but may
slow the element-wise kernels between them); the trainer's ``channels_last`` setting.
Both flags together also time the compiled step in channels_last (the two settings
combined), interleaved with the eager default the same way.

    python benchmarks/roofline.py --threads 2
    python benchmarks/roofline.py --only gated_10x128 --steps 3 --amp   # force bf16
    python benchmarks/roofline.py --threads 2 --compile --steps 3
    python benchmarks/roofline.py --threads 2 --channels-last --steps 3
    python benchmarks/roofline.py --threads 2 --compile --channels-last --only gated_10x128
    python benchmarks/roofline.py --threads 2 --compile --profile --only pixelcnn_pp_cifar10

``--profile`` adds, for each path timed, a profile of one step (:func:`profile_step`): the
shares of its time in convolutions and matrix products, in the layout copies made for
them, in fused kernels, in the optimizer and in the rest; and the rate of the
convolutions alone, which bounds what the whole step can reach.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import defaultdict

import torch
from torch.utils.flop_counter import FlopCounterMode

from pixelzoo import models
from pixelzoo.training import compiling
from pixelzoo.training.trainer import Objective, choose_amp, fast_bfloat16

CONFIGS = {
    # name: (model, preset, image shape, levels, batch, micro_batch, overrides)
    "gated_10x128": ("gated_pixelcnn", "binarized_mnist", (1, 28, 28), 2, 64, None, {}),
    "pixelcnn_bmnist": ("pixelcnn", "binarized_mnist", (1, 28, 28), 2, 64, None, {}),
    "pixelcnn_bmnist_cpu": ("pixelcnn", "binarized_mnist_cpu", (1, 28, 28), 2, 64, None, {}),
    "pixelcnn_pp_cifar10": ("pixelcnn_pp", "cifar10", (3, 32, 32), 256, 16, None, {}),
    "pixelcnn_pp_cifar10_cpu": ("pixelcnn_pp", "cifar10_cpu", (3, 32, 32), 256, 16, None, {}),
    "row_lstm_bmnist": ("row_lstm", "binarized_mnist", (1, 28, 28), 2, 64, None, {}),
    "diagonal_bilstm_bmnist": ("diagonal_bilstm", "binarized_mnist", (1, 28, 28), 2, 64, None, {}),
}


def peak_flops(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of repeated ``n x n @ n x n`` products in ``dtype`` (2 n^3 each)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0)


def make_step(model, x, amp: bool, micro_batch: int | None, compile: bool = False):
    """One training step as the trainer takes it (the loss wrapped as a module; compiled
    as ``compile=true`` compiles it); returns the step, which returns its loss."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    chunks = x.split(micro_batch or len(x))
    objective = Objective(model)
    if compile:
        objective = compiling.compiled(objective)

    def step():
        total = 0.0
        for chunk in chunks:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = objective(chunk) * (len(chunk) / len(x))
            loss.backward()
            total += float(loss.detach())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return total

    return step


# The kernels a roofline bounds: convolutions and matrix products, forward and backward.
MATMUL_OPS = {
    "aten::mkldnn_convolution", "aten::convolution_backward", "aten::mm", "aten::addmm",
    "aten::bmm", "aten::baddbmm", "aten::_convolution_pointwise", "mkldnn::_convolution_pointwise",
}  # fmt: skip


def _ancestors(event):
    p = event.cpu_parent
    while p is not None:
        yield p.name
        p = p.cpu_parent


def profile_step(step, flops: float, peak: float | None) -> dict:
    """Where one step's time goes (``torch.profiler``, self times of the main thread's
    operators, which run the intra-op threads themselves):

    * convolutions and matrix products;
    * copies that ``.contiguous()`` makes for them (oneDNN's layout changes);
    * TorchInductor's fused kernels: a compiled graph's own time, its extern convolutions
      counted above (each kernel by name with
      ``torch._inductor.config.cpp.enable_kernel_profile = True``);
    * the optimizer;
    * everything else (eager element-wise kernels, autograd).

    ``matmul_utilisation`` is the rate of the convolutions and products alone against the
    peak: the step's ceiling if all the rest took no time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        step()
        wall = time.perf_counter() - t0
    seconds = defaultdict(float)
    for e in prof.events():
        chain = list(_ancestors(e))
        if e.name in MATMUL_OPS:
            kind = "convolution_matmul"
        elif e.name.startswith("## Call CompiledFxGraph") or "cpp_fused" in e.name:
            kind = "compiled_kernels"
        elif any(n.startswith("Optimizer.") for n in [e.name, *chain]):
            kind = "optimizer"
        elif (
            e.name == "aten::copy_"
            and "aten::contiguous" in chain
            and any("convolution" in n for n in chain)
        ):
            kind = "layout_copies"
        else:
            kind = "other"
        seconds[kind] += e.self_cpu_time_total / 1e6
    total = sum(seconds.values())
    mm = seconds["convolution_matmul"]
    return {
        "step_s": round(wall, 4),
        "share": {k: round(v / total, 3) for k, v in sorted(seconds.items())},
        "matmul_gflops": round(flops / mm / 1e9, 1) if mm else None,
        "matmul_utilisation": None if peak is None or not mm else round(flops / mm / peak, 3),
    }


def timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def measure_variant(name: str, steps: int, amp: bool, eager_step, compile: bool = False,
                    channels_last: bool = False, profile: tuple | None = None) -> dict:  # fmt: skip
    """The same model and batch built another way (compiled, or its weights and batch in
    channels_last memory format): its first step timed apart (for a compiled one, the
    compiling), then ``steps`` of its steps interleaved with the default eager ones; the
    speed-up is eager / variant, the median of the per-pair ratios."""
    model_name, preset, shape, levels, batch, micro, extra = CONFIGS[name]
    torch.manual_seed(0)
    model = models.build(model_name, shape, levels, preset, **extra).train()
    x = torch.randint(0, levels, (batch, *shape))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step = make_step(model, x, amp, micro, compile=compile)
    first = timed(step)  # compiles, if it compiles
    step()  # the first step after compiling may still pay for allocations
    pairs = [(timed(eager_step), timed(step)) for _ in range(steps)]
    ratios = [e / c for e, c in pairs]
    out = {
        "first_step_s": round(first, 1),
        "eager_step_s": round(statistics.median(e for e, _ in pairs), 4),
        "variant_step_s": round(statistics.median(c for _, c in pairs), 4),
        "speedup": round(statistics.median(ratios), 2),
        "speedup_range": [round(min(ratios), 2), round(max(ratios), 2)],
        "pairs": len(pairs),
    }
    if profile is not None:
        out["profile"] = profile_step(step, *profile)
    return out


def measure(name: str, steps: int, amp: bool, peaks: dict, native_bf16: bool,
            compile: bool = False, channels_last: bool = False,
            profile: bool = False) -> dict:  # fmt: skip
    model_name, preset, shape, levels, batch, micro, extra = CONFIGS[name]
    torch.manual_seed(0)
    model = models.build(model_name, shape, levels, preset, **extra).train()
    x = torch.randint(0, levels, (batch, *shape))
    step = make_step(model, x, amp, micro)
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()  # warm-up

    def measure_peaks():
        peaks["fp32"].append(peak_flops(torch.float32))
        peaks["bf16"].append(peak_flops(torch.bfloat16) if native_bf16 else None)

    measure_peaks()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    measure_peaks()
    achieved = flops / seconds
    peak32 = max(peaks["fp32"][-2:])
    peak16 = max(peaks["bf16"][-2:]) if native_bf16 else None
    ratio = lambda peak: None if peak is None else round(achieved / peak, 3)  # noqa: E731
    out = {
        "config": name,
        "model": model_name,
        "preset": preset,
        "batch": batch,
        "micro_batch": micro,
        "amp_bf16": amp,
        "params": sum(p.numel() for p in model.parameters()),
        "gflop_per_step": round(flops / 1e9, 2),
        "step_s": round(seconds, 4),
        "images_per_s": round(batch / seconds, 1),
        "achieved_gflops": round(achieved / 1e9, 1),
        "peak_fp32_gflops": round(peak32 / 1e9, 1),
        "peak_bf16_gflops": None if peak16 is None else round(peak16 / 1e9, 1),
        "utilisation_fp32": ratio(peak32),
        "utilisation_bf16": ratio(peak16),
        "utilisation": ratio(peak16 if amp else peak32),
    }
    peak = peak16 if amp else peak32
    if profile:
        out["profile"] = profile_step(step, flops, peak)
    variants = {
        "compiled": {"compile": True} if compile else None,
        "channels_last": {"channels_last": True} if channels_last else None,
        "compiled_channels_last": (
            {"compile": True, "channels_last": True} if compile and channels_last else None
        ),
    }
    for key, settings in variants.items():
        if settings is not None:
            v = measure_variant(
                name, steps, amp, step, **settings, profile=(flops, peak) if profile else None
            )
            v["achieved_gflops"] = round(flops / v["variant_step_s"] / 1e9, 1)
            v["utilisation"] = (
                None if peak is None else round(flops / v["variant_step_s"] / peak, 3)
            )
            out[key] = v
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=list(CONFIGS), help="configurations")
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: the trainer's choice for this machine)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time the step under torch.compile, interleaved with the eager one",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="also time the eager step with the weights and batch in channels_last memory "
        "format, interleaved with the default (contiguous) one",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also profile one step of each path: the shares of its time in convolutions and "
        "matrix products, layout copies, fused kernels, the optimizer and the rest",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = {"fp32": [], "bf16": []}
    dtype, why = choose_amp(args.amp, "cpu")
    amp = dtype is not None  # bfloat16 on a CPU
    native = fast_bfloat16("cpu")
    results = [
        measure(n, args.steps, amp, peaks, native, args.compile, args.channels_last, args.profile)
        for n in args.only or CONFIGS
    ]
    print(json.dumps({
        "benchmark": "roofline",
        "machine": platform.processor() or platform.machine(),
        "native_bf16": native,
        "amp": amp,
        "amp_reason": why,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "results": results,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
