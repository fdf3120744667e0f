"""The comparison report: metrics.jsonl, report.md, report.html and the plots.

The HTML page is static (no script), with the images next to it, so it opens
from the folder in any browser; report.md says the same for a terminal or a
repository page.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from urllib.parse import quote

from pixelzoo.evaluation.receptive_field import plot_receptive_fields
from pixelzoo.report.measure import KEYS
from pixelzoo.utils.io import atomic_write_bytes

KIND_MARK = {"exact": "", "bound": " (bound)", "ais": " (AIS)"}

# (heading, function of a record -> cell text)
COLUMNS = [
    ("model", lambda r: r["label"]),
    ("params", lambda r: "-" if r["params"] is None else f"{r['params'] / 1e6:.2f} M"),
    (
        "train time",
        lambda r: "-" if r["train_seconds"] is None else f"{r['train_seconds'] / 60:.1f} min",
    ),
    ("train img/s", lambda r: fmt(r["train_images_per_s"])),
    (
        "NLL nats/image",
        lambda r: "-" if r["nats"] is None else f"{r['nats']:.2f}{KIND_MARK[r['nats_kind']]}",
    ),
    ("bits/dim", lambda r: "-" if r["bits_per_dim"] is None else f"{r['bits_per_dim']:.4f}"),
    (
        "AIS nats (BDMC gap)",
        lambda r: "-" if r["ais_nats"] is None else f"{r['ais_nats']:.2f} ({r['bdmc_gap']:.2f})",
    ),
    ("FID", lambda r: fmt(r["fid"])),
    ("KID", lambda r: fmt(r["kid"])),
    ("IS", lambda r: fmt(r["inception_score"])),
    ("MS-SSIM", lambda r: fmt(r["ms_ssim"])),
    ("SWD x1e3", lambda r: fmt(r["swd"])),
    (
        "modes (KL)",
        lambda r: (
            "-"
            if r["modes"] is None
            else f"{r['modes']}/{r['num_modes']} ({r['kl_to_uniform']:.3f})"
        ),
    ),
    ("closest pair", lambda r: fmt(r["closest_pair"])),
    ("sample 16", lambda r: _seconds(r["sample_seconds"], r["sample_seconds_naive"])),
]


def fmt(value, digits: int = 3) -> str:
    """A number for a table: '-' for None, thousands separators for large ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits + 1}g}"


def _seconds(cached, naive) -> str:
    if cached is None:
        return "-"
    text = f"{cached:.3g} s"
    return text if naive is None else f"{text} (naive {naive:.3g} s)"


def table_rows(records: list[dict]) -> list[list[str]]:
    return [[cell(r) for _, cell in COLUMNS] for r in records]


def md_escape(text: str) -> str:
    """Text as Markdown shows it literally in a table cell, a caption or image alt text.

    An underscore inside a word (``gated_pixelcnn``) is left alone: it never starts
    emphasis in CommonMark.
    """
    text = re.sub(r"([\\`*\[\]<>|])", r"\\\1", str(text))
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)


def markdown_table(records: list[dict]) -> str:
    """The report's table as Markdown (what the CLI prints after a comparison)."""
    head = [h for h, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in table_rows(records)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- reading
def reading(records: list[dict]) -> list[str]:
    """A short plain-words reading of the table: who wins what, and by how much."""
    models = [r for r in records if r["model"] != "data"]
    data = next((r for r in records if r["model"] == "data"), None)
    out = []
    exact = [r for r in models if r["nats_kind"] == "exact"]
    if exact:
        best = min(exact, key=lambda r: r["nats"])
        out.append(
            f"Best exact likelihood: {best['label']} at {best['nats']:.2f} nats/image "
            f"({best['bits_per_dim']:.4f} bits/dim) on {best['nll_images']:,} test images."
        )
    for r in models:
        if r["ais_nats"] is None:
            continue
        what = (
            "an AIS estimate"
            if r["nats_kind"] == "ais"
            else f"AIS (IWAE bound {r['iwae_nats']:.2f})"
        )
        versus = ""
        if exact:
            gap = r["ais_nats"] - best["nats"]
            versus = (
                f", {abs(gap):.1f} nats {'worse' if gap > 0 else 'better'} than {best['label']}"
            )
        out.append(
            f"{r['label']}: {r['ais_nats']:.2f} nats/image by {what}{versus}; the BDMC gap on "
            f"simulated data is {r['bdmc_gap']:.2f} nats, so the estimate is "
            f"{'tight' if r['bdmc_gap'] < 1 else 'loose: more AIS steps would lower it'}."
        )
    scored = [r for r in models if r["fid"] is not None]
    if scored:
        best_fid = min(scored, key=lambda r: r["fid"])
        if data and data["fid"] is not None and data["fid"] >= best_fid["fid"]:
            out.append(
                f"FID does not rank the models here: real held-out images score {data['fid']:.3g}, no "
                f"better than the models ({best_fid['fid']:.3g} to "
                f"{max(r['fid'] for r in scored):.3g}), so at {data['samples']} samples the "
                "metric is dominated by its estimation noise; more samples are needed."
            )
        else:
            floor = (
                f" (real held-out images score {data['fid']:.3g})"
                if data and data["fid"] is not None
                else ""
            )
            out.append(
                f"Best sample quality by FID: {best_fid['label']} at {best_fid['fid']:.3g}{floor}."
            )
        low = [r for r in scored if r["modes"] is not None and r["modes"] < r["num_modes"]]
        if low:
            out.append(
                "Missing modes: "
                + ", ".join(f"{r['label']} covers {r['modes']} of {r['num_modes']}" for r in low)
                + "."
            )
        elif scored[0]["modes"] is not None:
            out.append(
                f"Every model's samples cover all {scored[0]['num_modes']} modes of the evaluator."
            )
    if data and data["ms_ssim"] is not None:
        collapsed = [
            r for r in models if r["ms_ssim"] is not None and r["ms_ssim"] > data["ms_ssim"] + 0.05
        ]
        if collapsed:
            out.append(
                "Less diverse than the data by MS-SSIM (higher is less diverse): "
                + ", ".join(f"{r['label']} {r['ms_ssim']:.3f}" for r in collapsed)
                + f" against {data['ms_ssim']:.3f}."
            )
    full = max((r["samples"] or 0 for r in records), default=0)
    for r in models:
        if r["samples"] is not None and r["samples"] < full:
            out.append(
                f"{r['label']}'s sample metrics use {r['samples']} samples (its sampler is slow), not "
                f"{full}: its FID is biased upward by the small set; its KID is not."
            )
    timed = [r for r in models if r["sample_seconds"] is not None]
    if timed:
        fast, slow = (
            min(timed, key=lambda r: r["sample_seconds"]),
            max(timed, key=lambda r: r["sample_seconds"]),
        )
        out.append(
            f"Sampling 16 images: {fast['label']} {fast['sample_seconds']:.3g} s, {slow['label']} "
            f"{slow['sample_seconds']:.3g} s ({slow['sample_seconds'] / max(fast['sample_seconds'], 1e-9):,.0f}x slower)."
        )
    return out


# ---------------------------------------------------------------------- plots
def plot_curves(records: list[dict], path: Path) -> None:
    """Validation NLL and training loss against training time, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gans = [r for r in records if any("g_loss" in rec for _, rec in r.get("curve_train", []))]
    fig, axes = plt.subplots(1, 3 if gans else 2, figsize=(16 if gans else 11, 4))
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
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------- files
def _clean(record: dict) -> dict:
    out = {k: record.get(k) for k in KEYS}
    for k in (
        "kid_std",
        "observation",
        "label",
        "gan_noise_scores",
        "samples_image",
        "pairs_image",
    ):
        if k in record:
            out[k] = record[k]
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()
    }


def write_report(records: list[dict], out: Path, meta: dict) -> dict:
    """Write metrics.jsonl, report.md, report.html and curves.png into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / "metrics.jsonl", "".join(json.dumps(_clean(r)) + "\n" for r in records).encode()
    )
    plot_curves(records, out / "curves.png")
    words = reading(records)
    head = [h for h, _ in COLUMNS]
    rows = table_rows(records)
    images = [(r["label"], r["samples_image"]) for r in records]
    pairs = [(r["label"], r["pairs_image"]) for r in records]
    rfs = {
        r["label"]: r["receptive_field"] for r in records if r.get("receptive_field") is not None
    }
    fields = []
    if rfs:  # one figure: the blind spots side by side
        plot_receptive_fields(rfs, out / "receptive-fields.png")
        fields = [("autoregressive models", "receptive-fields.png")]
    notes = meta.get("notes", [])

    md = [f"# {meta['title']}", "", *meta.get("lines", []), "", markdown_table(records)]
    md += [
        "",
        "## Reading",
        "",
        *[f"- {w}" for w in words],
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in notes],
    ]
    md += ["", "## Training curves", "", "![training curves](curves.png)", "", "## Samples", ""]

    def md_image(label, src, what):
        return f"**{md_escape(label)}**\n\n![{md_escape(label)} {what}]({quote(src)})\n"

    md += [md_image(label, src, "samples") for label, src in images]
    md += ["## Closest pairs among the samples (birthday-paradox test)", ""]
    md += [md_image(label, src, "closest pairs") for label, src in pairs]
    if fields:
        md += ["## Receptive fields", ""] + [f"![{label}]({quote(src)})\n" for label, src in fields]
    atomic_write_bytes(out / "report.md", ("\n".join(md) + "\n").encode())

    e = html.escape
    table = (
        "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
    )
    table += (
        "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        + "</tbody></table>"
    )

    def figures(items, alt):
        return "".join(
            f'<figure><img src="{e(quote(src))}" alt="{e(label)} {alt}"><figcaption>{e(label)}</figcaption></figure>'
            for label, src in items
        )

    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(meta["title"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
thead {{ background: #f0f0f0; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
figure img {{ image-rendering: pixelated; max-width: 360px; }}
figcaption {{ text-align: center; font-size: 0.85em; }}
</style></head><body>
<h1>{e(meta["title"])}</h1>
{"".join(f"<p>{e(line)}</p>" for line in meta.get("lines", []))}
{table}
<h2>Reading</h2><ul>{"".join(f"<li>{e(w)}</li>" for w in words)}</ul>
<h2>Notes</h2><ul>{"".join(f"<li>{e(n)}</li>" for n in notes)}</ul>
<h2>Training curves</h2><img src="curves.png" alt="validation NLL and training loss against training time">
<h2>Samples</h2>{figures(images, "samples")}
<h2>Closest pairs among the samples (birthday-paradox test)</h2>
<p>Each column is the closest pair: an exact duplicate would show the same image twice.</p>{figures(pairs, "closest pairs")}
{"<h2>Receptive fields</h2>" + figures(fields, "receptive field") if fields else ""}
</body></html>
"""
    atomic_write_bytes(out / "report.html", page.encode())
    return {k: out / k for k in ("report.html", "report.md", "metrics.jsonl", "curves.png")}
