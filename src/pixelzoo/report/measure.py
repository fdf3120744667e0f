"""Every measurement of one run (or of the data itself), as one flat record.

:func:`measure_run` loads a trained run and measures, on the test split of its
dataset: the NLL (exact, the VAE's IWAE bound, or an AIS estimate for GANs),
the AIS estimate and BDMC gap for decoder models, FID / KID / IS on the
evaluator's features, MS-SSIM diversity, SWD, mode count and KL to uniform,
the closest pair among the samples, the time to draw 16 samples (cached and
naive for autoregressive models), and the training record (parameters, training
time and throughput, the validation curve). :func:`measure_data` gives the same
sample metrics for held-out real images: the row every model is read against.
Image files (sample grid, closest pairs, receptive field) are written to ``out``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pixelzoo.data.images import save_grid
from pixelzoo.errors import InputError
from pixelzoo.evaluation.ais import AISConfig, ais_log_prob, bdmc, choose_gan_noise, decoder_of
from pixelzoo.evaluation.features import feature_metrics
from pixelzoo.evaluation.modes import count_modes, nearest_pairs, save_pairs
from pixelzoo.evaluation.msssim import ms_ssim_diversity
from pixelzoo.evaluation.nll import bits_per_dim, evaluate_nll
from pixelzoo.evaluation.receptive_field import receptive_field
from pixelzoo.evaluation.swd import swd
from pixelzoo.models import AutoregressiveModel
from pixelzoo.runs import Run

# The keys of every record, in the order of metrics.jsonl (null where a metric does not apply).
KEYS = (
    "model", "run", "params", "train_seconds", "train_images_per_s", "steps",
    "nats", "nats_kind", "bits_per_dim", "nll_images", "iwae_nats", "ais_nats", "ais_images",
    "bdmc_gap", "fid", "kid", "kid_std", "inception_score", "ms_ssim", "swd", "modes",
    "num_modes", "kl_to_uniform", "closest_pair", "sample_seconds", "sample_seconds_naive",
    "samples",
)  # fmt: skip


@dataclass
class MeasureConfig:
    """How much to measure.

    Args:
        samples: generated (and real test) images for the sample metrics.
        nll_images: test images for the NLL (None: the whole test split).
        ais: run AIS (and BDMC) for GANs and VAEs.
        ais_images: test images AIS is run on; ``bdmc_images`` simulated images.
        ais_config: AIS settings (steps, chains, leapfrog...).
        gan_noise: the GAN observation model's noise (Bernoulli flip probability, or
            the discretized Gaussian's standard deviation, see ``evaluation/ais.py``);
            None chooses it on validation images, as Wu et al. 2017 do.
        naive_timing: also time the naive sampler of autoregressive models that have
            a cached one.
        max_sample_seconds: a model whose 16 samples took t seconds draws only as many
            samples as fit in this budget (at least 16), so that a slow naive sampler
            (the PixelRNNs) cannot stall the report; the record's ``samples`` says how
            many, and the real set is cut to match. None: no limit.
        seed: every random draw (samples, AIS, KID subsets) comes from it.
    """

    samples: int = 1000
    nll_images: int | None = None
    ais: bool = True
    ais_images: int = 100
    bdmc_images: int = 16
    ais_config: AISConfig = field(
        default_factory=lambda: AISConfig(steps=500, chains=8, leapfrog=10)
    )
    gan_noise: float | None = None
    naive_timing: bool = True
    max_sample_seconds: float | None = None
    seed: int = 0


def _first(ds, n: int | None):
    if n is None or n >= len(ds):
        return ds
    labels = None if ds.labels is None else ds.labels[:n]
    return dataclasses.replace(ds, images=ds.images[:n], labels=labels)


def _images(ds, n: int) -> torch.Tensor:
    return ds.get_batch(torch.arange(min(n, len(ds))), generator=torch.Generator().manual_seed(0))[
        0
    ]


def _timed_sample(model, n: int, g, sampler: str = "auto") -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    x = model.sample(n, model.sample_cond(n), generator=g, sampler=sampler)
    return x, time.perf_counter() - t0


def sample_metrics(
    fake: torch.Tensor, real: torch.Tensor, levels: int, evaluator, out: Path, name: str, seed: int
) -> dict:
    """FID/KID/IS, MS-SSIM, SWD, modes and the closest pair of ``fake`` against ``real``."""
    n = min(len(fake), len(real))
    fake, real = fake[:n], real[:n]
    rec: dict = {"samples": n}
    if evaluator is not None:
        rec.update(feature_metrics(evaluator, real, fake, levels, seed=seed))
    if hasattr(evaluator, "spec"):  # a classifier of the data's classes (not Inception): modes
        modes = count_modes(evaluator, fake, levels)
        rec.update(
            modes=modes["modes"], num_modes=modes["num_modes"], kl_to_uniform=modes["kl_to_uniform"]
        )
    rec["ms_ssim"] = ms_ssim_diversity(fake, levels, seed=seed)["ms_ssim"]
    rec["swd"] = swd(real, fake, levels, seed=seed)["mean"]
    pairs = nearest_pairs(fake, levels, k=8)
    rec["closest_pair"] = pairs[0][2]
    rec["pairs_image"], rec["samples_image"] = f"{name}-pairs.png", f"{name}-samples.png"
    save_pairs(fake, pairs, levels, out / rec["pairs_image"])
    save_grid(fake[:64], levels, out / rec["samples_image"], nrow=8)
    return rec


def measure_run(
    run_dir,
    out: Path,
    evaluator,
    cfg: MeasureConfig,
    *,
    progress=None,
    label: str | None = None,
    name: str | None = None,
) -> dict:
    """Every measurement of the trained run ``run_dir`` (see the module docstring).

    ``label`` is the model's name in the report (default: the run folder's name),
    ``name`` the prefix of its image files in ``out`` (unique per report).
    """
    say = progress or (lambda msg: None)
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    model = run.load_model()
    label = label or run.label
    name = name or label
    test = run.load_split("test")
    g = torch.Generator().manual_seed(cfg.seed)
    rec: dict = dict.fromkeys(KEYS)
    rec.update(model=run.model_spec["name"], run=str(run.path), label=label)
    rec["params"] = sum(p.numel() for p in model.parameters())
    rec.update(run.training_record())
    model.sample_cond(1)  # a model compare cannot sample fails here, before any measuring
    dims = model.dims

    say(f"{label}: likelihood")
    if model.nats_kind is not None:
        nll = evaluate_nll(model, _first(test, cfg.nll_images))
        rec.update(nats=nll["nats"], nats_kind=nll["nats_kind"], nll_images=nll["images"])
        if nll["nats_kind"] == "bound":
            rec["iwae_nats"] = nll["nats"]
    if cfg.ais and model.nats_kind != "exact":
        observation = {}
        if model.nats_kind is None:  # a GAN: its observation noise, given or chosen on validation
            key = model.noise_key
            if cfg.gan_noise is None:
                valid = _images(run.load_split("valid"), max(8, cfg.ais_images // 4))
                chosen = choose_gan_noise(model, valid, generator=g)
                observation[key] = chosen[key]
                rec["gan_noise_scores"] = chosen["scores"]
            else:
                observation[key] = cfg.gan_noise
        decoder = decoder_of(model, **observation)
        x = _images(test, cfg.ais_images)
        est = ais_log_prob(decoder, x, cfg.ais_config, generator=g)
        rec["ais_nats"], rec["ais_images"] = -float(est["log_prob"].mean()), len(x)
        rec["bdmc_gap"] = bdmc(decoder, cfg.bdmc_images, cfg.ais_config, generator=g)["gap"]
        rec["observation"] = decoder.describe()
        if rec["nats"] is None:
            rec.update(nats=rec["ais_nats"], nats_kind="ais", nll_images=len(x))
    if rec["nats"] is not None:
        rec["bits_per_dim"] = bits_per_dim(rec["nats"], dims)

    _, rec["sample_seconds"] = _timed_sample(model, 16, torch.Generator().manual_seed(cfg.seed))
    n = cfg.samples
    if cfg.max_sample_seconds is not None:  # sampling time grows about linearly with n
        n = min(n, max(16, int(16 * cfg.max_sample_seconds / rec["sample_seconds"])))
    say(f"{label}: {n} samples")
    fake, _ = _timed_sample(model, n, g)
    if cfg.naive_timing and isinstance(model, AutoregressiveModel) and model.has_cached_sampler():
        _, rec["sample_seconds_naive"] = _timed_sample(
            model, 16, torch.Generator().manual_seed(cfg.seed), sampler="naive"
        )
    say(f"{label}: sample metrics")
    real = _images(test, cfg.samples)
    rec.update(sample_metrics(fake, real, model.levels, evaluator, out, name, cfg.seed))
    if model.nats_kind == "exact":  # drawn with the others' by the report
        rec["receptive_field"] = receptive_field(model)
    return rec


def measure_data(run_dir, out: Path, evaluator, cfg: MeasureConfig, *, name: str = "data") -> dict:
    """The sample metrics of held-out real images: training images against the test images."""
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    train, test = run.load_split("train"), run.load_split("test")
    n = min(cfg.samples, len(train), len(test))
    rec: dict = dict.fromkeys(KEYS)
    rec.update(model="data", run=None, label=f"data ({train.name} train vs test)")
    rec.update(
        sample_metrics(
            _images(train, n), _images(test, n), test.levels, evaluator, out, name, cfg.seed
        )
    )
    return rec


def check_comparable(runs: list[Run]) -> dict:
    """The dataset every run was trained on; one sentence if they differ."""
    seen: dict = {}
    for run in runs:
        if run.kind == "evaluator":
            raise InputError(f"{run.path} is an evaluator; pass it as --evaluator, not as a run")
        seen.setdefault(run.dataset_identity(), []).append(run)
    if len(seen) > 1:
        desc = "; ".join(
            f"{', '.join(str(r.path) for r in rs)} on {rs[0].describe_data()}"
            for rs in seen.values()
        )
        raise InputError(f"compare needs runs on one dataset, got {desc}")
    first = runs[0]
    return {"data": first.data_name, "image_shape": first.image_shape, "levels": first.levels}
