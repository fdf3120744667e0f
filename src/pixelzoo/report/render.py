"""The comparison report: metrics.jsonl, report.md, report.html and the plots.

The HTML page is static (no script), with the images next to it, so it opens
from the folder in any browser; report.md says the same for a terminal or a
repository page. Every figure is printed with its 95% interval ("value ± half"
for symmetric intervals, "value (low–high)" otherwise); how each interval was
obtained is listed in the notes. The reading is :mod:`pixelzoo.report.verdict`'s.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from pathlib import Path
from urllib.parse import quote

import torch

from pixelzoo.evaluation.receptive_field import plot_receptive_fields
from pixelzoo.report.measure import KEYS, METHODS
from pixelzoo.report.verdict import estimate_of, fmt_estimate, reading
from pixelzoo.utils.io import atomic_write_bytes

KIND_MARK = {"exact": "", "bound": " (bound)", "ais": " (AIS)"}


def duration(seconds: float | None) -> str:
    """A duration a person reads: seconds below a minute, minutes below an hour, else hours."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt(value, digits: int = 3) -> str:
    """A number for a table: '-' for None, thousands separators for large ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits + 1}g}"


def _est(key: str):
    return lambda r: fmt_estimate(estimate_of(r, key))


def _nll(r: dict) -> str:
    if r["nats"] is None:
        return "-"
    return fmt_estimate(estimate_of(r, "nats")) + KIND_MARK.get(r["nats_kind"], "")


def _ais(r: dict) -> str:
    if r["ais_nats"] is None:
        return "-"
    loose = ", loose" if r.get("ais_loose") else ""
    return f"{fmt_estimate(estimate_of(r, 'ais_nats'))} (gap {r['bdmc_gap']:.2f}, {r['ais_steps']:,} steps{loose})"


def _modes(r: dict) -> str:
    if r["modes"] is None:
        return "-"
    return (f"{fmt_estimate(estimate_of(r, 'modes'))} of {r['num_modes']} "
            f"(KL {fmt_estimate(estimate_of(r, 'kl_to_uniform'))})")  # fmt: skip


def _memorized(r: dict) -> str:
    if r["memorized"] is None:
        return "-"
    copies = r.get("exact_copies")
    return fmt_estimate(estimate_of(r, "memorized")) + (f", {copies} copies" if copies else "")


def _compressed(r: dict) -> str:
    """The real file's bits/dim, with the NLL on the same images for reading the gap (for a
    VAE, the bits-back code's ideal length at the latents it chose: about the -ELBO)."""
    if r.get("compressed_bits_per_dim") is None:
        return "-"
    ideal = "bits-back ideal" if r.get("compressed_bits_back") else "NLL"
    return (f"{r['compressed_bits_per_dim']:.4f} ({ideal} {r['compressed_nll_bits_per_dim']:.4f}, "
            f"{r['compressed_images']} imgs)")  # fmt: skip


def compression_note(records: list[dict]) -> str | None:
    """The everyday lossless codecs on the images the models compressed, as one sentence."""
    data = next((r for r in records if r.get("lossless_baselines")), None)
    if data is None:
        return None
    parts = []
    names = {"png": "PNG", "webp": "WebP lossless", "jpegxl": "JPEG-XL lossless"}
    for key, m in data["lossless_baselines"].items():
        if m is None:
            parts.append(f"{names[key]} not installed (pip install imagecodecs)")
        else:
            parts.append(f"{names[key]} {m['per_image']:.4f} one file per image, "
                         f"{m['tiled']:.4f} all tiled into one")  # fmt: skip
    return (
        f"File bits/dim: the first {data['compressed_images']} test images in one "
        "pixelzoo file (pixelzoo compress), every file decoded back exactly; a VAE's file "
        "is its bits-back code (Townsend et al. 2019), whose length approaches its -ELBO; "
        f"the same images with the everyday codecs, bits/dim: {'; '.join(parts)}."
    )


def _speed(r: dict) -> str:
    if r["sample_seconds"] is None:
        return "-"
    low, high = r.get("sample_seconds_range") or (r["sample_seconds"],) * 2
    text = f"{r['sample_seconds']:.3g} s ({low:.3g}–{high:.3g}, {r.get('timing_runs') or 1} runs)"
    naive = r.get("sample_seconds_naive")
    return text if naive is None else f"{text}; naive {naive:.3g} s"


def _wall(r: dict) -> str:
    """The run's wall time and validation's share of it ("-" for runs that did not count it)."""
    wall = r.get("wall_seconds")
    if not wall:
        return "-"
    return f"{duration(wall)} ({(r.get('valid_seconds') or 0.0) / wall:.0%})"


# Two tables, each (heading, function of a record -> cell text): likelihood and cost,
# then the samples.
LIKELIHOOD_COLUMNS = [
    ("model", lambda r: r["label"]),
    ("params", lambda r: "-" if r["params"] is None else f"{r['params'] / 1e6:.2f} M"),
    ("train time", lambda r: duration(r["train_seconds"])),
    ("wall time (validating)", _wall),
    ("train img/s", lambda r: fmt(r["train_images_per_s"])),
    ("NLL nats/image", _nll),
    ("bits/dim", _est("bits_per_dim")),
    ("route", lambda r: r.get("nats_route") or "-"),
    ("file bits/dim", _compressed),
    ("AIS nats (BDMC gap)", _ais),
    ("sample 16", _speed),
]
SAMPLE_COLUMNS = [
    ("model", lambda r: r["label"]),
    ("samples", lambda r: fmt(r["samples"])),
    ("FID", _est("fid")),
    ("KID", _est("kid")),
    ("IS", _est("inception_score")),
    ("precision", _est("precision")),
    ("recall", _est("recall")),
    ("density", _est("density")),
    ("coverage", _est("coverage")),
    ("memorized", _memorized),
    ("MS-SSIM", _est("ms_ssim")),
    ("SWD x1e3", _est("swd")),
    ("modes", _modes),
    ("closest pair", lambda r: fmt(r["closest_pair"])),
]
# Inception-v3 beside the evaluator (compare --evaluator E --inception FILE): its own table.
INCEPTION_COLUMNS = [
    ("model", lambda r: r["label"]),
    ("samples", lambda r: fmt(r["samples"])),
    ("Inception FID", _est("inception_fid")),
    ("Inception KID", _est("inception_kid")),
    ("Inception IS", _est("inception_is")),
]
COLUMNS = LIKELIHOOD_COLUMNS + SAMPLE_COLUMNS[1:] + INCEPTION_COLUMNS[2:]  # every heading


def tables(records: list[dict]) -> list[tuple[str, list]]:
    """The report's tables, (heading, columns): the Inception one only when it was measured."""
    out = [("Likelihood and cost", LIKELIHOOD_COLUMNS), ("Samples", SAMPLE_COLUMNS)]
    if any(r.get("inception_fid") is not None for r in records):
        out.append(("Inception-v3 features (the published kind of FID/IS)", INCEPTION_COLUMNS))
    return out


def table_rows(records: list[dict], columns=COLUMNS) -> list[list[str]]:
    return [[cell(r) for _, cell in columns] for r in records]


def md_escape(text: str) -> str:
    """Text as Markdown shows it literally in a table cell, a caption or image alt text.

    An underscore inside a word (``gated_pixelcnn``) is left alone: it never starts
    emphasis in CommonMark.
    """
    text = re.sub(r"([\\`*\[\]<>|])", r"\\\1", str(text))
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)


def markdown_table(records: list[dict], columns=None) -> str:
    """The report's tables as Markdown (what the CLI prints after a comparison)."""
    out = []
    for cols in [c for _, c in tables(records)] if columns is None else [columns]:
        head = [h for h, _ in cols]
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        lines += [
            "| " + " | ".join(md_escape(c) for c in row) + " |" for row in table_rows(records, cols)
        ]
        out.append("\n".join(lines))
    return "\n\n".join(out)


# ---------------------------------------------------------------------- plots
def plot_curves(records: list[dict], path: Path) -> None:
    """Validation NLL and training loss against training time, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gans = [r for r in records if any("g_loss" in rec for _, rec in r.get("curve_train", []))]
    fig, axes = plt.subplots(1, 3 if gans else 2, figsize=(13 if gans else 10, 3.8))
    for r in records:
        valid = [(t, v) for t, v in r.get("curve_valid", []) if t is not None]
        if valid:
            axes[0].plot(
                [t / 60 for t, _ in valid], [v for _, v in valid], marker="o", label=r["label"]
            )
        train = [(t / 60, rec) for t, rec in r.get("curve_train", []) if t is not None]
        pts = [(t, rec["bits_per_dim"]) for t, rec in train if "bits_per_dim" in rec]
        if pts:
            axes[1].plot(*zip(*pts, strict=True), label=r["label"], alpha=0.8)
        for key in ("d_loss", "g_loss") if r in gans else ():
            pts = [(t, rec[key]) for t, rec in train if key in rec]
            axes[2].plot(*zip(*pts, strict=True), label=f"{r['label']} {key[0].upper()}", alpha=0.8)
    axes[0].set(
        xlabel="training time (min)", ylabel="validation NLL (nats/image)", title="Validation NLL"
    )
    axes[1].set(
        xlabel="training time (min)", ylabel="training loss (bits/dim)", title="Training loss"
    )
    if gans:
        axes[2].set(xlabel="training time (min)", ylabel="loss", title="GAN losses (D and G)")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------- files
EXTRAS = ("observation", "label", "gan_noise_scores", "samples_image", "pairs_image",
          "train_pairs_image", "bound_route", "ais_vs_bound", "bdmc_history",
          "class_samples_image", "class_names")  # fmt: skip


def _clean(record: dict) -> dict:
    """A record as JSON: the KEYS, the extras, non-finite floats as null, no tensors."""
    out = {k: record.get(k) for k in KEYS}
    out.update({k: record[k] for k in EXTRAS if k in record})

    def plain(v):
        if isinstance(v, torch.Tensor):
            return None
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in out.items()}


def write_report(records: list[dict], out: Path, meta: dict) -> dict:
    """Write metrics.jsonl, report.md, report.html and curves.png into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / "metrics.jsonl", "".join(json.dumps(_clean(r)) + "\n" for r in records).encode()
    )
    plot_curves(records, out / "curves.png")
    words = reading(records)
    images = [(r["label"], r["samples_image"]) for r in records]
    pairs = [(r["label"], r["pairs_image"]) for r in records]
    nearest = [(r["label"], r["train_pairs_image"]) for r in records if r.get("train_pairs_image")]
    by_class = [
        (f"{r['label']} (rows: {', '.join(r['class_names'])})", r["class_samples_image"])
        for r in records
        if r.get("class_samples_image")
    ]
    rfs = {
        r["label"]: r["receptive_field"] for r in records if r.get("receptive_field") is not None
    }
    fields = []
    if rfs:  # one figure: the blind spots side by side
        plot_receptive_fields(rfs, out / "receptive-fields.png")
        fields = [("autoregressive models", "receptive-fields.png")]
    notes = meta.get("notes", []) + [f"Intervals ({name}): {how}." for name, how in METHODS.items()]
    if compression_note(records):
        notes.append(compression_note(records))

    def md_images(items, what):
        return [f"**{md_escape(label)}**\n\n![{md_escape(label)} {what}]({quote(src)})\n"
                for label, src in items]  # fmt: skip

    md = [f"# {meta['title']}", "", *meta.get("lines", []), "", markdown_table(records)]
    md += ["", "## Reading", "", *[f"- {w}" for w in words], "", "## Notes", "",
           *[f"- {n}" for n in notes]]  # fmt: skip
    md += ["", "## Training curves", "", "![training curves](curves.png)", "", "## Samples", ""]
    md += md_images(images, "samples")
    if by_class:
        md += ["## Samples by class (class-conditional models)", ""]
        md += md_images(by_class, "samples by class")
    md += ["## Closest pairs among the samples (birthday-paradox test)", ""]
    md += md_images(pairs, "closest pairs")
    if nearest:
        md += ["## The samples closest to a training image (top) and that image (bottom)", ""]
        md += md_images(nearest, "nearest training images")
    if fields:
        md += ["## Receptive fields", ""] + [f"![{label}]({quote(src)})\n" for label, src in fields]
    atomic_write_bytes(out / "report.md", ("\n".join(md) + "\n").encode())

    e = html.escape

    def html_table(cols):
        head = "".join(f"<th>{e(h)}</th>" for h, _ in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
            for row in table_rows(records, cols)
        )
        return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

    def figures(items, alt):
        return "".join(
            f'<figure><img src="{e(quote(src))}" alt="{e(label)} {alt}"><figcaption>{e(label)}</figcaption></figure>'
            for label, src in items
        )

    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(meta["title"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }}
.scroll {{ overflow-x: auto; margin: 1em 0; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }}
thead {{ background: #f0f0f0; }}
img {{ max-width: 100%; height: auto; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }}
figure img {{ image-rendering: pixelated; max-width: min(360px, 100%); }}
figcaption {{ text-align: center; font-size: 0.85em; }}
</style></head><body>
<h1>{e(meta["title"])}</h1>
{"".join(f"<p>{e(line)}</p>" for line in meta.get("lines", []))}
{"".join(f"<h2>{e(heading)}</h2>{html_table(cols)}" for heading, cols in tables(records))}
<h2>Reading</h2><ul>{"".join(f"<li>{e(w)}</li>" for w in words)}</ul>
<h2>Notes</h2><ul>{"".join(f"<li>{e(n)}</li>" for n in notes)}</ul>
<h2>Training curves</h2><img src="curves.png" alt="validation NLL and training loss against training time">
<h2>Samples</h2>{figures(images, "samples")}
{"<h2>Samples by class (class-conditional models)</h2>" + figures(by_class, "samples by class") if by_class else ""}
<h2>Closest pairs among the samples (birthday-paradox test)</h2>
<p>Each column is the closest pair: an exact duplicate would show the same image twice.</p>{figures(pairs, "closest pairs")}
{"<h2>The samples closest to a training image</h2><p>Top: the samples nearest to the training set in the evaluator's features; bottom: that training image.</p>" + figures(nearest, "nearest training images") if nearest else ""}
{"<h2>Receptive fields</h2>" + figures(fields, "receptive field") if fields else ""}
</body></html>
"""
    atomic_write_bytes(out / "report.html", page.encode())
    return {k: out / k for k in ("report.html", "report.md", "metrics.jsonl", "curves.png")}
