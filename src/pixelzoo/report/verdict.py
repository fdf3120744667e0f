"""The report's reading: which model is better on which axis, and only where the noise allows.

Each axis (likelihood, fidelity, diversity, memorization, speed) has metrics; on
each metric the best model is named, and every other model is either
*separated* from it (its 95% interval does not overlap the best one's; for NLLs
of two models on the same test images, the interval of the paired per-image
difference excludes 0) or *not separated at N samples*. An axis has a winner
only when its first metric separates the best model from every other. The real
held-out data is read the same way: a model not separated from the real data's
FID is one whose samples the metric cannot tell from real images at that size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pixelzoo.evaluation.uncertainty import (
    Estimate,
    difference_excludes_zero,
    paired_difference,
    separated,
)


@dataclass(frozen=True)
class Metric:
    key: str
    name: str
    lower_is_better: bool
    unit: str = ""


AXES: dict[str, list[Metric]] = {
    "likelihood": [Metric("nats", "NLL", True, " nats/image")],
    "fidelity": [Metric("fid", "FID", True), Metric("kid", "KID", True),
                 Metric("precision", "precision", False)],
    "diversity": [Metric("recall", "recall", False), Metric("coverage", "coverage", False),
                  Metric("modes", "modes covered", False)],
    "memorization": [Metric("memorized", "memorized samples", True)],
    "speed": [Metric("sample_seconds", "time to draw 16 images", True, " s")],
}  # fmt: skip


def estimate_of(rec: dict, key: str) -> Estimate | None:
    """The record's figure ``key`` as an :class:`Estimate` (None where it does not apply)."""
    value = rec.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if key == "sample_seconds":
        low, high = rec.get("sample_seconds_range") or (value, value)
        return Estimate(value, low, high, "range", rec.get("timing_runs") or 1)
    ci = rec.get(f"{key}_ci") or [math.nan, math.nan]
    return Estimate(value, ci[0], ci[1], "interval", rec.get("samples") or 0)


def fmt_estimate(est: Estimate | None, digits: int = 3) -> str:
    """``value +- half`` for a symmetric interval, ``value (low-high)`` otherwise; '-' for none."""
    if est is None:
        return "-"
    v = _num(est.value, digits)
    if any(math.isnan(x) for x in (est.low, est.high)):
        return v
    half = (est.high - est.low) / 2
    if abs((est.value - est.low) - half) <= 0.02 * max(abs(half), 1e-300):
        return f"{v} ± {_num(half, 2)}"
    return f"{v} ({_num(est.low, digits)}–{_num(est.high, digits)})"


def _num(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if float(x).is_integer() and abs(x) < 1e6:  # a count (modes covered)
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}" if digits <= 2 else f"{x:.2f}"
    return f"{x:.{digits}g}"


def only_an_upper_bound(rec: dict) -> bool:
    """Whether a record's NLL is only an upper bound: a VAE's IWAE bound, or AIS whose BDMC
    gap missed its target (AIS within the target is read as an estimate of the NLL)."""
    return rec.get("nats_kind") == "bound" or (
        rec.get("nats_kind") == "ais" and bool(rec.get("ais_loose"))
    )


def compare_pair(best: dict, other: dict, metric: Metric) -> tuple[bool, str]:
    """Whether ``other`` is separated from ``best`` on ``metric``, and how it was decided.

    An NLL that is only an upper bound and lies above the best one ranks nothing: the
    model's true NLL may be lower still.
    """
    if metric.key == "nats" and only_an_upper_bound(other):
        return False, "an upper bound above it, so not a ranking"
    if (
        metric.key == "nats"
        and best.get("per_image") is not None
        and other.get("per_image") is not None
    ):
        m = min(len(best["per_image"]), len(other["per_image"]))
        d = paired_difference(other["per_image"][:m], best["per_image"][:m])
        how = f"{d.value:+.2f} ± {d.half_width:.2f} nats on the same {m:,} test images"
        return difference_excludes_zero(d), how
    if metric.key not in ("nats", "sample_seconds") and best.get("samples") != other.get("samples"):
        # Sample metrics move with the sample count (FID's bias, the k-NN radii of
        # precision/recall): figures at different counts are not ranked. (Sampling
        # time is always measured on 16 images.)
        return False, f"at {other.get('samples') or 0:,} samples, not {best.get('samples') or 0:,}"
    a, b = estimate_of(best, metric.key), estimate_of(other, metric.key)
    return separated(a, b), ""


def rank(records: list[dict], metric: Metric) -> dict | None:
    """The best model on ``metric`` and which others it is separated from."""
    rows = [r for r in records if r["model"] != "data" and estimate_of(r, metric.key) is not None]
    if len(rows) < 1:
        return None
    key = (lambda r: r[metric.key]) if metric.lower_is_better else (lambda r: -r[metric.key])
    rows.sort(key=key)
    best, others = rows[0], rows[1:]
    apart, tied = [], []
    for r in others:
        sep, how = compare_pair(best, r, metric)
        (apart if sep else tied).append((r, how))
    return {"metric": metric, "best": best, "separated": apart, "tied": tied}


def _size(rec: dict, metric: Metric) -> str:
    if metric.key == "nats":
        return f"{rec.get('nll_images') or 0:,} test images"
    if metric.key == "sample_seconds":
        return f"{rec.get('timing_runs') or 1} timing runs"
    return f"{rec.get('samples') or 0:,} samples"


def describe_rank(result: dict) -> str:
    metric, best = result["metric"], result["best"]
    text = f"{metric.name}: best {best['label']} at {fmt_estimate(estimate_of(best, metric.key))}{metric.unit}"
    if result["separated"]:
        parts = [f"{r['label']}{f' ({how})' if how else ''}" for r, how in result["separated"]]
        text += f"; ahead of {', '.join(parts)}"
    if result["tied"]:
        parts = [f"{r['label']}{f' ({how})' if how else ''}" for r, how in result["tied"]]
        text += f"; not separated from {', '.join(parts)} at {_size(best, metric)}"
    return text + "."


def winners(records: list[dict]) -> list[str]:
    """One phrase per axis: its winner where its first measured metric separates the best
    model from every other, else the models it cannot tell apart."""
    out = []
    for axis, metrics in AXES.items():
        for metric in metrics:
            result = rank(records, metric)
            if result is None:
                continue
            best = result["best"]
            figure = f"{metric.name} {fmt_estimate(estimate_of(best, metric.key))}{metric.unit}"
            if not result["tied"]:
                out.append(f"{axis}: {best['label']} ({figure})")
            else:
                names = ", ".join([best["label"]] + [r["label"] for r, _ in result["tied"]])
                out.append(f"{axis}: no winner, {names} not separated by {metric.name}")
            break
    return out


def against_data(records: list[dict], key: str = "fid", name: str = "FID") -> str | None:
    """Whether the metric tells real held-out images from each model's samples."""
    data = next((r for r in records if r["model"] == "data"), None)
    if data is None or estimate_of(data, key) is None:
        return None
    real = estimate_of(data, key)
    models = [r for r in records if r["model"] != "data" and estimate_of(r, key) is not None]
    if not models:
        return None
    same = [r["label"] for r in models if not separated(real, estimate_of(r, key))]
    head = f"Real held-out images score {name} {fmt_estimate(real)} at {data.get('samples') or 0:,} images"
    if not same:
        return (
            head + f": separated from every model, so {name} tells their samples from real images."
        )
    return (head + f"; not separated from {', '.join(same)}: at this size {name} cannot tell "
            f"{'its' if len(same) == 1 else 'their'} samples from real images.")  # fmt: skip


def likelihood_notes(records: list[dict]) -> list[str]:
    """AIS figures with their BDMC check, and which route gave a model's tightest bound."""
    out = []
    for r in records:
        if r.get("ais_nats") is None:
            continue
        ais = fmt_estimate(estimate_of(r, "ais_nats"))
        check = (f"its BDMC gap on simulated data is {r['bdmc_gap']:.2f} nats after {r['ais_steps']:,} "
                 f"steps ({'within' if not r['ais_loose'] else 'LOOSE: above'} the target of "
                 f"{r['bdmc_target']:g})")  # fmt: skip
        text = f"{r['label']}: AIS {ais} nats/image on {r['ais_images']} test images; {check}"
        vs = r.get("ais_vs_bound")
        if vs is not None:
            bound = r.get("bound_route") or "IWAE"
            lower = "AIS" if vs["value"] < 0 else bound
            apart = vs["low"] > 0 or vs["high"] < 0
            text += (f"; against its {bound} bound on the same images AIS is "
                     f"{vs['value']:+.2f} ± {(vs['high'] - vs['low']) / 2:.2f} nats, "
                     + (f"so the tighter upper bound is {lower}" if apart else
                        f"not separated; the figure shown is the lower, {lower}"))  # fmt: skip
        if r.get("ais_chain_spread") is not None:
            text += f"; chains spread by {r['ais_chain_spread']:.2f} nats (sd of log-weights)"
        out.append(text + ".")
    return out


def reading(records: list[dict]) -> list[str]:
    """The plain-words reading of a comparison (see the module docstring)."""
    out = []
    for axis, metrics in AXES.items():
        for metric in metrics:
            result = rank(records, metric)
            if result is not None and (
                result["separated"] or result["tied"] or axis == "likelihood"
            ):
                out.append(f"{axis.capitalize()}, {describe_rank(result)}")
    out += likelihood_notes(records)
    for key, name in (("fid", "FID"), ("kid", "KID")):
        line = against_data(records, key, name)
        if line:
            out.append(line)
    data = next((r for r in records if r["model"] == "data"), None)
    if data is not None and estimate_of(data, "ms_ssim") is not None:
        real = estimate_of(data, "ms_ssim")
        less = [r for r in records if r["model"] != "data" and estimate_of(r, "ms_ssim") is not None
                and estimate_of(r, "ms_ssim").low > real.high]  # fmt: skip
        if less:
            out.append("Less diverse than the data by MS-SSIM (higher is less diverse; separated): "
                       + ", ".join(f"{r['label']} {fmt_estimate(estimate_of(r, 'ms_ssim'))}" for r in less)
                       + f" against {fmt_estimate(real)}.")  # fmt: skip
    copies = [r for r in records if r.get("exact_copies")]
    if copies:
        out.append("Exact copies of training images among the samples: "
                   + ", ".join(f"{r['label']} {r['exact_copies']}" for r in copies) + ".")  # fmt: skip
    full = max((r.get("samples") or 0 for r in records), default=0)
    for r in records:
        if r["model"] != "data" and r.get("samples") is not None and r["samples"] < full:
            out.append(f"{r['label']}'s sample metrics use {r['samples']} samples (its sampler is slow), "
                       f"not {full}: its intervals are wider and its FID is biased upward.")  # fmt: skip
    win = winners(records)
    if win:
        out.append("Verdict by axis (a winner is separated from every other model): "
                   + "; ".join(win) + ".")  # fmt: skip
    return out
