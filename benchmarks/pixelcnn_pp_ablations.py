"""The PixelCNN++ ablations (Salimans et al. 2017, §3) on ``cifar10-jpeg`` at one CPU budget.

The paper's three findings, each a setting of ``pixelcnn_pp`` on its ``cifar10_cpu`` preset:

* the discretized logistic mixture trains faster than a 256-way softmax
  (``likelihood=softmax``, R -> G -> B within the pixel);
* removing the short-cut connections hinders training (``shortcuts=false``);
* without dropout the model overfits (``dropout=0``; the others keep the paper's 0.5).

Each variant trains for ``--minutes`` of wall time (validation on a fixed 1,000
images, held to at most 20% of it, included) on ``--threads``
threads, ``--jobs`` of them at once (two single-thread runs on a 2-core machine:
give each job its own core, or the budgets are not equal). Then all are measured
on the same images, in eval mode (no dropout): test bits/dim over ``--images``
test images and train bits/dim over as many training images, each with its 95%
interval over the images, and every variant's per-image difference from the full
model on the same test images (paired interval). A finding "holds" only when the
difference is separated from 0 in the paper's direction. Runs that finished are
reused. Writes ``results.json``, ``table.md`` and ``curves.png`` to ``--out`` and
prints the JSON.

    python benchmarks/pixelcnn_pp_ablations.py --data ../shared/data/cifar10-jpeg \
        --runs /tmp/ablations --minutes 15 --out docs/ablations-pixelcnn_pp
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import platform
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from pixelzoo.evaluation.nll import nll_values
from pixelzoo.evaluation.uncertainty import (
    Z95,
    Estimate,
    difference_excludes_zero,
    mean_estimate,
    paired_difference,
)
from pixelzoo.runs import Run, read_metrics, trained_seconds
from pixelzoo.training import TrainConfig, train_side_by_side
from pixelzoo.training.trainer import fast_bfloat16
from pixelzoo.utils.io import atomic_write_bytes

# name -> the settings that differ from the cifar10_cpu preset.
VARIANTS = {
    "full": {"dropout": 0.5},  # the paper's model: mixture, shortcuts, dropout 0.5 (§3)
    "softmax": {"dropout": 0.5, "likelihood": "softmax"},
    "no-shortcuts": {"dropout": 0.5, "shortcuts": False},
    "no-dropout": {"dropout": 0.0},
}
# (variant, the paper's claim, the sign of variant - full that the claim predicts, on what)
FINDINGS = (
    ("softmax", "the mixture trains faster than a 256-way softmax", +1, "test"),
    ("no-shortcuts", "removing the short-cut connections hinders training", +1, "test"),
    ("no-dropout", "without dropout the model overfits", +1, "gap"),
)


def variant_config(name: str, args: dict) -> TrainConfig:
    """The ``cifar10_cpu`` preset with the variant's settings, at the benchmark's budget."""
    return TrainConfig(
        model="pixelcnn_pp", preset="cifar10_cpu", overrides=VARIANTS[name],
        data="folder", data_dir=args["data"], minutes=args["minutes"], epochs=1000,
        batch_size=args["batch_size"], amp=fast_bfloat16("cpu"), valid_images=1000, seed=args["seed"],
    )  # fmt: skip


def measure_variant(name: str, args: dict) -> dict:
    """Per-image NLLs (nats) of the run's last checkpoint on the fixed test and train images."""
    torch.set_num_threads(args["threads"])
    run = Run(Path(args["runs"]) / name)
    model = run.load_model("last")
    out = {"name": name, "settings": VARIANTS[name], "dims": model.dims}
    for split in ("test", "train"):
        data = run.load_split(split, args["data"])
        g = torch.Generator().manual_seed(1)
        idx = torch.randperm(len(data), generator=g)[: args["images"]].sort().values
        out[split] = nll_values(model, data, idx, batch_size=100).tolist()
    records = read_metrics(run.path)
    train_recs = [r for r in records if r.get("split") == "train" and "bits_per_dim" in r]
    out["curve"] = [(r["train_seconds"], r["bits_per_dim"]) for r in train_recs]
    out["steps"] = train_recs[-1]["step"] if train_recs else 0
    out["train_seconds"] = trained_seconds(run.path)
    out["parameters"] = sum(p.numel() for p in model.parameters())
    return out


def bpd(est: Estimate, dims: int) -> dict:
    f = 1.0 / (dims * math.log(2))
    return {"value": est.value * f, "low": est.low * f, "high": est.high * f, "n": est.n}


def unpaired_difference(a: Estimate, b: Estimate) -> Estimate:
    """``a - b`` for independent normal estimates: the standard errors add in quadrature."""
    se = math.hypot(a.high - a.value, b.high - b.value) / Z95
    d = a.value - b.value
    return Estimate(d, d - Z95 * se, d + Z95 * se, "normal", min(a.n, b.n))


def gap_estimate(test: list[float], train: list[float]) -> Estimate:
    """mean(test) - mean(train) over different images."""
    return unpaired_difference(mean_estimate(test), mean_estimate(train))


def fmt(d: dict, digits: int = 3) -> str:
    return f"{d['value']:.{digits}f} [{d['low']:.{digits}f}, {d['high']:.{digits}f}]"


def verdicts(results: dict) -> list[dict]:
    full = results["full"]
    out = []
    for name, claim, sign, on in FINDINGS:
        if name not in results:
            continue
        r, dims = results[name], full["dims"]
        if on == "test":
            d = paired_difference(r["test"], full["test"])
            what = f"test bits/dim, {name} - full (paired)"
        else:
            d = unpaired_difference(
                gap_estimate(r["test"], r["train"]), gap_estimate(full["test"], full["train"])
            )
            what = f"(test - train) bits/dim, {name} - full"
        diff = bpd(d, dims)
        if not difference_excludes_zero(d):
            state = "not separated at this budget"
        elif (d.value > 0) == (sign > 0):
            state = "holds"
        else:
            state = "reversed at this budget"
        out.append(
            {"variant": name, "claim": claim, "on": what, "difference": diff, "state": state}
        )
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, r in results.items():
        pts = r["curve"]
        if not pts:
            continue
        t, v = zip(*pts, strict=True)
        k = 10  # a running mean over 10 records (500 steps) of the per-batch training loss
        smooth = [sum(v[max(0, i - k + 1) : i + 1]) / len(v[max(0, i - k + 1) : i + 1])
                  for i in range(len(v))]  # fmt: skip
        ax.plot([s / 60 for s in t], smooth, label=name)
    ax.set(xlabel="training-step time (min)", ylabel="training loss (bits/dim, running mean)",
           title="PixelCNN++ ablations on cifar10-jpeg")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def table(summary: dict) -> str:
    lines = [
        f"# PixelCNN++ ablations on cifar10-jpeg, {summary['minutes']:g} minutes each",
        "",
        summary["setup"],
        "",
        "| variant | settings | parameters | steps | test bits/dim | train bits/dim | "
        "test - full (paired) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in summary["variants"].items():
        diff = fmt(r["test_minus_full"], 4) if r.get("test_minus_full") else "-"
        settings = ", ".join(f"{k}={v}" for k, v in VARIANTS[name].items())
        lines.append(
            f"| {name} | {settings} | {r['parameters']:,} | {r['steps']:,} | "
            f"{fmt(r['test_bits_per_dim'])} | {fmt(r['train_bits_per_dim'])} | {diff} |"
        )
    lines += ["", "Intervals: 95% over the images. The paper's findings at this budget:", ""]
    for v in summary["findings"]:
        lines.append(f"- {v['claim']}: **{v['state']}** ({v['on']}: {fmt(v['difference'], 4)})")
    lines += ["", "![training curves](curves.png)", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/cifar10-jpeg")
    p.add_argument("--runs", default="runs/ablations-pixelcnn_pp")
    p.add_argument("--out", default="docs/ablations-pixelcnn_pp")
    p.add_argument("--minutes", type=float, default=15.0, help="wall minutes per variant")
    p.add_argument("--batch-size", type=int, default=16, help="the paper's per-GPU batch")
    p.add_argument("--images", type=int, default=2000, help="test (and train) images measured")
    p.add_argument("--threads", type=int, default=1, help="threads per job")
    p.add_argument("--jobs", type=int, default=2, help="variants trained at once")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, help="comma-separated variants (default: all)")
    args = p.parse_args()
    names = [n for n in VARIANTS if args.only is None or n in args.only.split(",")]
    if "full" not in names:
        names.insert(0, "full")  # every finding is read against the full model
    shared = {k: getattr(args, k) for k in ("data", "runs", "minutes", "batch_size", "images",
                                           "threads", "seed")}  # fmt: skip
    jobs = [(variant_config(n, shared), Path(args.runs) / n) for n in names]
    train_side_by_side(jobs, processes=args.jobs, threads=args.threads)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        measured = list(pool.map(measure_variant, names, [shared] * len(names)))
    results = {r["name"]: r for r in measured}
    dims = results["full"]["dims"]
    variants = {}
    for name, r in results.items():
        variants[name] = {
            "parameters": r["parameters"],
            "steps": r["steps"],
            "train_seconds": round(r["train_seconds"], 1),
            "test_bits_per_dim": bpd(mean_estimate(r["test"]), dims),
            "train_bits_per_dim": bpd(mean_estimate(r["train"]), dims),
            "test_minus_full": (
                bpd(paired_difference(r["test"], results["full"]["test"]), dims)
                if name != "full"
                else None
            ),
        }
    setup = (
        f"Each variant: the `cifar10_cpu` preset with the settings below, {args.minutes:g} "
        f"minutes of wall time (validation included), batch {args.batch_size}, "
        f"{'bf16 autocast' if fast_bfloat16('cpu') else 'float32 (no native bf16)'}, "
        f"{args.threads} thread(s) per run, {args.jobs} run(s) at once, on "
        f"{platform.processor() or platform.machine()}; the last checkpoint measured in eval "
        f"mode on the same {args.images:,} test and {args.images:,} training images. The "
        "images are decoded JPEGs: bits/dim are not the paper's CIFAR-10 figures."
    )
    summary = {
        "benchmark": "pixelcnn_pp_ablations",
        "minutes": args.minutes,
        "setup": setup,
        "variants": variants,
        "findings": verdicts(results),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "curves.png")
    atomic_write_bytes(out / "results.json", (json.dumps(summary, indent=1) + "\n").encode())
    atomic_write_bytes(out / "table.md", table(summary).encode())
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
