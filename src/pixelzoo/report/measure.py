"""Every measurement of one run (or of the data itself), as one flat record.

:func:`measure_run` loads a trained run and measures, on the test split of its
dataset, each figure with its 95% interval (:mod:`pixelzoo.evaluation.uncertainty`):

- **likelihood**: the exact NLL (over the test images), the VAE's IWAE bound, and
  for decoder models (GANs, the VAE) an AIS estimate run to a BDMC gap target;
  the record's ``nats`` is the tightest figure and ``nats_route`` says which;
- **fidelity and diversity** in the evaluator's feature space: FID, KID, the
  Inception Score, improved precision and recall, density and coverage;
- **memorization**: samples closer to a training image than held-out images are,
  and exact copies;
- **samples themselves**: MS-SSIM diversity, SWD, mode count and KL to uniform,
  the closest pair among the samples;
- **speed**: seconds to draw 16 images over several runs (cached and naive for
  autoregressive models), and the training record (parameters, training time and
  throughput, the validation curve).

:func:`measure_data` gives the same sample metrics for held-out real images: the
row every model is read against. :class:`Reference` holds what every row shares
(the reference images and their features, the training set's features), computed
once. Image files (sample grid, closest pairs, closest training images) are
written to ``out``. Per-image NLLs travel in the record (``per_image``) for the
reading's paired comparisons, but not into metrics.jsonl.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixelzoo import codec
from pixelzoo.codec import bitsback
from pixelzoo.data.images import save_grid, save_npz
from pixelzoo.errors import InputError
from pixelzoo.evaluation import lossless
from pixelzoo.evaluation.ais import (
    AISConfig,
    ais_log_prob,
    bdmc_to_target,
    choose_gan_noise,
    decoder_of,
)
from pixelzoo.evaluation.features import FeatureSet, extract, feature_metrics
from pixelzoo.evaluation.manifold import memorization, precision_recall_density_coverage
from pixelzoo.evaluation.modes import mode_labels, nearest_pairs, save_pairs
from pixelzoo.evaluation.msssim import ms_ssim_diversity
from pixelzoo.evaluation.nll import bits_per_dim, evaluate_nll
from pixelzoo.evaluation.receptive_field import receptive_field
from pixelzoo.evaluation.swd import swd
from pixelzoo.evaluation.uncertainty import Estimate, bootstrap, mean_estimate, paired_difference
from pixelzoo.models import AutoregressiveModel
from pixelzoo.runs import Run

# Figures with a 95% interval: each has a "<key>_ci" entry [low, high] in the record.
INTERVAL_KEYS = (
    "nats", "ais_nats", "fid", "kid", "inception_score", "precision", "recall", "density",
    "coverage", "memorized", "ms_ssim", "swd", "modes", "kl_to_uniform",
    "inception_fid", "inception_kid", "inception_is",
)  # fmt: skip
# The keys of every record, in the order of metrics.jsonl (null where a metric does not apply).
KEYS = (
    "model", "run", "params", "train_seconds", "wall_seconds", "valid_seconds",
    "train_images_per_s", "steps",
    "nats", "nats_ci", "nats_kind", "nats_route", "bits_per_dim", "bits_per_dim_ci",
    "nll_images", "iwae_nats", "iwae_nats_ci", "ais_nats", "ais_nats_ci", "ais_images",
    "ais_steps", "ais_chain_spread", "bdmc_gap", "bdmc_target", "ais_loose",
    "fid", "fid_ci", "kid", "kid_ci", "inception_score", "inception_score_ci",
    "inception_fid", "inception_fid_ci", "inception_kid", "inception_kid_ci",
    "inception_is", "inception_is_ci", "precision", "precision_ci", "recall", "recall_ci", "density", "density_ci",
    "coverage", "coverage_ci", "memorized", "memorized_ci", "exact_copies",
    "ms_ssim", "ms_ssim_ci", "swd", "swd_ci", "modes", "modes_ci", "num_modes",
    "kl_to_uniform", "kl_to_uniform_ci", "closest_pair",
    "sample_seconds", "sample_seconds_range", "timing_runs", "sample_seconds_naive", "samples",
    "compressed_bits_per_dim", "compressed_nll_bits_per_dim", "compressed_images",
    "compressed_bits_back",
    "lossless_baselines",
)  # fmt: skip

# How each interval is obtained, in the report's words.
METHODS = {
    "nats": "mean +- 1.96 standard errors over the test images (paired differences for two "
    "models on the same images)",
    "fid": "bootstrap: +- 1.96 standard errors of the statistic over resamples of the "
    "generated and the reference images",
    "precision": "Wilson intervals over the samples (precision) or the reference images "
    "(recall, coverage), normal for density, with the k-NN manifolds held fixed",
    "memorized": "Wilson interval over the samples, with the held-out threshold held fixed",
    "ms_ssim": "mean +- 1.96 standard errors over the random pairs",
    "swd": "the spread over disjoint parts of both sets (Student's t)",
    "modes": "bootstrap over the samples",
    "sample_seconds": "the median and the range of several runs",
}


@dataclass
class MeasureConfig:
    """How much to measure.

    Args:
        samples: generated (and real test) images for the sample metrics.
        nll_images: test images for the NLL (None: the whole test split).
        ais: run AIS (and BDMC) for GANs and VAEs.
        ais_images: test images AIS is run on; ``bdmc_images`` simulated images.
        ais_config: AIS settings (chains, leapfrog...); its steps are where the
            doubling towards the BDMC target starts.
        ais_target_gap: the BDMC gap (nats/image) AIS runs until, doubling its steps.
        ais_max_steps: the step budget of that doubling; a figure whose gap missed the
            target is marked loose.
        gan_noise: the GAN observation model's noise (Bernoulli flip probability, or
            the discretized Gaussian's standard deviation, see ``evaluation/ais.py``);
            None chooses it on validation images, as Wu et al. 2017 do.
        naive_timing: also time the naive sampler of autoregressive models that have
            a cached one.
        max_sample_seconds: a model whose 16 samples took t seconds draws only as many
            samples as fit in this budget (at least 16), so that a slow naive sampler
            (the PixelRNNs) cannot stall the report; the record's ``samples`` says how
            many, and the real set is cut to match. None: no limit.
        bootstrap: resamples for the bootstrap intervals (FID, KID, IS, modes).
        swd_parts: disjoint parts for SWD's interval (0: no interval, half the time).
        prdc_k: the k of the k-NN manifolds of precision/recall/density/coverage.
        memorization_quantile: the held-out images' distance quantile that flags a sample.
        timing_runs: runs of the 16-sample timing (one when a run takes over 30 s).
        device: where models and the feature network run ("cpu", "cuda", ...).
        sample_cache: a folder where drawn samples are kept (one ``.npz`` per run, checkpoint,
            count and seed) and read back by later comparisons: thousands of samples of a
            slow sampler are drawn once.
        compress_images: the first test images compressed into one pixelzoo file by each
            autoregressive model (its real code length, next to its NLL on the same images),
            and by PNG, WebP and JPEG-XL for the data row; 0 turns both off.
        seed: every random draw (samples, AIS, resamples) comes from it; the samples
            have their own generator, so they do not depend on what else is measured.
    """

    samples: int = 1000
    nll_images: int | None = None
    ais: bool = True
    ais_images: int = 100
    bdmc_images: int = 16
    ais_config: AISConfig = field(
        default_factory=lambda: AISConfig(steps=500, chains=8, leapfrog=10)
    )
    ais_target_gap: float = 1.0
    ais_max_steps: int = 16_000
    gan_noise: float | None = None
    naive_timing: bool = True
    max_sample_seconds: float | None = None
    bootstrap: int = 200
    swd_parts: int = 5
    prdc_k: int = 3
    memorization_quantile: float = 0.05
    timing_runs: int = 3
    device: str = "cpu"
    sample_cache: Path | None = None
    compress_images: int = 100
    seed: int = 0


def _first(ds, n: int | None):
    if n is None or n >= len(ds):
        return ds
    labels = None if ds.labels is None else ds.labels[:n]
    return dataclasses.replace(ds, images=ds.images[:n], labels=labels)


def first_images(ds, n: int | None = None) -> torch.Tensor:
    """The first ``n`` images of a dataset split (all of them by default; binarized once, seeded)."""
    n = len(ds) if n is None else min(n, len(ds))
    return ds.get_batch(torch.arange(n), generator=torch.Generator().manual_seed(0))[0]


def _put(rec: dict, key: str, est: Estimate | None) -> None:
    """``rec[key]`` = the value and ``rec[key + "_ci"]`` = [low, high] of an estimate."""
    if est is not None:
        rec[key], rec[f"{key}_ci"] = est.value, [est.low, est.high]


@dataclass
class Reference:
    """What every row of a report is measured against, computed once.

    Attributes:
        test: the reference images (the test split, up to ``samples``).
        train: the training images the data row scores as "samples".
        levels: intensity levels of both.
        test_set, train_set: their feature sets (None without a feature network).
        train_all: features of the whole training split (for memorization), and
        train_images: its images (for exact copies).
        inception, inception_test: Inception-v3 when it is measured beside the
            evaluator, and the reference images' features in it.
    """

    test: torch.Tensor
    train: torch.Tensor
    levels: int
    test_set: FeatureSet | None = None
    train_set: FeatureSet | None = None
    train_all: FeatureSet | None = None
    train_images: torch.Tensor | None = None
    memo_test: FeatureSet | None = None
    inception: nn.Module | None = None
    inception_test: FeatureSet | None = None

    @classmethod
    def of(cls, run: Run, evaluator, cfg: MeasureConfig, inception=None) -> Reference:
        """The reference of ``run``'s data; ``inception``: a second feature network
        (Inception-v3 beside the evaluator), for FID/KID/IS only."""
        train_ds, test_ds = run.load_split("train"), run.load_split("test")
        test, train_all = first_images(test_ds, cfg.samples), first_images(train_ds)
        train = train_all[: len(test)]
        ref = cls(test, train, test_ds.levels)
        if evaluator is not None:
            ref.test_set = extract(evaluator, test, ref.levels)
            ref.train_all = extract(evaluator, train_all, ref.levels)
            ref.train_set = FeatureSet(
                ref.train_all.features[: len(test)], ref.train_all.probs[: len(test)]
            )
            ref.train_images = train_all
            # Held-out distances to the training set: the whole test split.
            ref.memo_test = extract(evaluator, first_images(test_ds), ref.levels)
        if inception is not None:
            ref.inception, ref.inception_test = inception, extract(inception, test, ref.levels)
        return ref

    def cut(self, n: int) -> Reference:
        """The first ``n`` reference images (for a model that drew fewer samples)."""
        if n >= len(self.test):
            return self
        sub = lambda s: None if s is None else FeatureSet(s.features[:n], s.probs[:n])  # noqa: E731
        return dataclasses.replace(self, test=self.test[:n], train=self.train[:n],
                                   test_set=sub(self.test_set), train_set=sub(self.train_set),
                                   inception_test=sub(self.inception_test))  # fmt: skip


def _modes(evaluator, fake: torch.Tensor, levels: int, reps: int, seed: int) -> dict:
    labels, num_modes = mode_labels(evaluator, fake, levels)

    def counts(w):
        return torch.zeros(num_modes, dtype=torch.float64).index_add_(0, labels, w)

    def covered(w):
        return float((counts(w) > 0).sum())

    def kl(w):
        q = counts(w) / w.sum()
        seen = q > 0
        return float((q[seen] * (q[seen] * num_modes).log()).sum())

    n = len(labels)
    return {
        "modes": bootstrap(covered, (n,), reps, seed),
        "kl_to_uniform": bootstrap(kl, (n,), reps, seed + 1),
        "num_modes": num_modes,
    }


def sample_metrics(
    fake: torch.Tensor,
    ref: Reference,
    evaluator,
    out: Path,
    name: str,
    cfg: MeasureConfig,
    *,
    fake_is_training: bool = False,
) -> dict:
    """Every sample metric of ``fake`` against the reference images, with its interval."""
    n = min(len(fake), len(ref.test))
    fake, ref = fake[:n], ref.cut(n)
    levels, seed = ref.levels, cfg.seed
    rec: dict = {"samples": n}
    if evaluator is not None:
        fm = feature_metrics(
            evaluator, ref.test, fake, levels, reps=cfg.bootstrap, seed=seed, real_set=ref.test_set
        )
        for key in ("fid", "kid", "inception_score"):
            _put(rec, key, fm[key])
        f = fm["fake_set"].features
        manifold = precision_recall_density_coverage(ref.test_set.features, f, k=cfg.prdc_k)
        for key in ("precision", "recall", "density", "coverage"):
            _put(rec, key, manifold[key])
        if not fake_is_training:
            memo = memorization(
                ref.train_all.features, ref.memo_test.features, f,
                quantile=cfg.memorization_quantile, train_images=ref.train_images, fake_images=fake,
            )  # fmt: skip
            _put(rec, "memorized", memo["memorized"])
            rec["exact_copies"] = memo["exact_copies"]
            dist, index = memo["nearest"]
            closest = dist.argsort()[:8]
            rec["train_pairs_image"] = f"{name}-nearest-training.png"
            top, bottom = fake[closest], ref.train_images[index[closest]]
            save_grid(torch.cat([top, bottom.long()]), levels, out / rec["train_pairs_image"],
                      nrow=len(closest))  # fmt: skip
    if ref.inception is not None:  # Inception-v3 beside the evaluator: its FID, KID and IS
        fm = feature_metrics(
            ref.inception, ref.test, fake, levels, reps=cfg.bootstrap, seed=seed,
            real_set=ref.inception_test,
        )  # fmt: skip
        for key, theirs in (("inception_fid", "fid"), ("inception_kid", "kid"),
                            ("inception_is", "inception_score")):  # fmt: skip
            _put(rec, key, fm[theirs])
    if hasattr(evaluator, "spec"):  # a classifier of the data's classes (not Inception): modes
        modes = _modes(evaluator, fake, levels, cfg.bootstrap, seed)
        _put(rec, "modes", modes["modes"])
        _put(rec, "kl_to_uniform", modes["kl_to_uniform"])
        rec["num_modes"] = modes["num_modes"]
    div = ms_ssim_diversity(fake, levels, seed=seed)
    _put(rec, "ms_ssim", mean_estimate(div["scores"]))
    s = swd(
        ref.test, fake, levels, seed=seed, parts=cfg.swd_parts if n >= 10 * cfg.swd_parts else 0
    )
    _put(
        rec, "swd", s.get("estimate") or Estimate(s["mean"], float("nan"), float("nan"), "none", 1)
    )
    pairs = nearest_pairs(fake, levels, k=8)
    rec["closest_pair"] = pairs[0][2]
    rec["pairs_image"], rec["samples_image"] = f"{name}-pairs.png", f"{name}-samples.png"
    save_pairs(fake, pairs, levels, out / rec["pairs_image"])
    save_grid(fake[:64], levels, out / rec["samples_image"], nrow=8)
    return rec


def _timed_sample(model, n: int, g, sampler: str = "auto") -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    x = model.sample(n, model.sample_cond(n), generator=g, sampler=sampler)
    return x, time.perf_counter() - t0


def sample_cache_path(run: Run, n: int, cfg: MeasureConfig) -> Path | None:
    """Where ``cfg.sample_cache`` keeps ``n`` samples of the run's kept checkpoint (None: no cache)."""
    if cfg.sample_cache is None:
        return None
    step = run.checkpoints.step("best")
    step = run.checkpoints.step("last") if step is None else step
    return Path(cfg.sample_cache) / f"{run.run_id or run.label}-step{step}-n{n}-seed{cfg.seed}.npz"


def draw_samples(run: Run, model, n: int, cfg: MeasureConfig, say=None) -> torch.Tensor:
    """``n`` samples of the run's model from their own seeded generator, via ``cfg.sample_cache``."""
    path = sample_cache_path(run, n, cfg)
    if path is not None:
        if path.is_file():
            with np.load(path) as f:
                return torch.from_numpy(f["images"]).long()
    if say is not None:
        say(f"{run.label}: drawing {n} samples")
    g = torch.Generator().manual_seed(cfg.seed + 7)
    x = model.sample(n, model.sample_cond(n), generator=g).cpu()
    if path is not None:
        save_npz(x, model.levels, path)
    return x


def _timing(model, cfg: MeasureConfig, sampler: str = "auto") -> list[float]:
    """Seconds to draw 16 images, over up to ``timing_runs`` runs (one if a run takes > 30 s)."""
    times = []
    for _ in range(cfg.timing_runs):
        times.append(_timed_sample(model, 16, torch.Generator().manual_seed(cfg.seed), sampler)[1])
        if times[-1] > 30:
            break
    return times


def _likelihood(run: Run, model, test, cfg: MeasureConfig, rec: dict, g, say) -> None:
    """NLL (exact or bound) and, for decoder models, AIS to the BDMC target."""
    if model.nats_kind is not None:
        nll = evaluate_nll(model, _first(test, cfg.nll_images), per_image=True)
        rec.update(nats=nll["nats"], nats_ci=nll["nats_ci"], nats_kind=nll["nats_kind"],
                   nll_images=nll["images"], per_image=nll["per_image"])  # fmt: skip
        rec["nats_route"] = "exact" if nll["nats_kind"] == "exact" else model.nll_route
        if nll["nats_kind"] == "bound":
            rec["iwae_nats"], rec["iwae_nats_ci"] = nll["nats"], nll["nats_ci"]
            rec["bound_route"] = model.nll_route
    if not cfg.ais or model.nats_kind == "exact":
        return
    observation = {}
    if model.nats_kind is None:  # a GAN: its observation noise, given or chosen on validation
        key = model.noise_key
        if cfg.gan_noise is None:
            valid = first_images(run.load_split("valid"), max(8, cfg.ais_images // 4))
            chosen = choose_gan_noise(model, valid, generator=g)
            observation[key] = chosen[key]
            rec["gan_noise_scores"] = chosen["scores"]
        else:
            observation[key] = cfg.gan_noise
    decoder = decoder_of(model, **observation)
    say(f"{rec['label']}: BDMC towards a gap of {cfg.ais_target_gap:g} nats")
    target = bdmc_to_target(decoder, cfg.bdmc_images, cfg.ais_config, target_gap=cfg.ais_target_gap,
                            max_steps=cfg.ais_max_steps, generator=g)  # fmt: skip
    x = first_images(test, cfg.ais_images).to(model.device)
    say(f"{rec['label']}: AIS with {target['steps']} steps on {len(x)} images")
    est = ais_log_prob(decoder, x, dataclasses.replace(cfg.ais_config, steps=target["steps"]),
                       generator=g)  # fmt: skip
    per_image = -est["log_prob"].double()
    _put(rec, "ais_nats", mean_estimate(per_image))
    rec.update(ais_images=len(x), ais_steps=target["steps"], bdmc_gap=target["gap"],
               bdmc_target=target["target"], ais_loose=not target["reached"],
               ais_chain_spread=float(est["chain_log_weights"].std(1).mean()),
               ais_per_image=per_image, bdmc_history=target["history"],
               observation=decoder.describe())  # fmt: skip
    if rec["nats"] is None:  # a GAN: AIS is its only likelihood
        rec.update(nats=rec["ais_nats"], nats_ci=rec["ais_nats_ci"], nats_kind="ais",
                   nats_route=f"AIS ({target['steps']} steps)", nll_images=len(x),
                   per_image=per_image)  # fmt: skip
        return
    # Two upper bounds on the NLL (the VAE's): keep the tighter, compared on the same images.
    m = min(len(x), len(rec["per_image"]))
    d = paired_difference(per_image[:m], rec["per_image"][:m])
    rec["ais_vs_bound"] = d.to_json()
    if d.value < 0:
        rec.update(nats=rec["ais_nats"], nats_ci=rec["ais_nats_ci"], nll_images=len(x),
                   nats_route=f"AIS ({target['steps']} steps)", per_image=per_image)  # fmt: skip


def measure_run(
    run_dir,
    out: Path,
    evaluator,
    cfg: MeasureConfig,
    *,
    reference: Reference | None = None,
    progress=None,
    label: str | None = None,
    name: str | None = None,
) -> dict:
    """Every measurement of the trained run ``run_dir`` (see the module docstring).

    ``label`` is the model's name in the report (default: the run folder's name),
    ``name`` the prefix of its image files in ``out`` (unique per report);
    ``reference`` the shared reference (computed here if not given).
    """
    say = progress or (lambda msg: None)
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    model = run.load_model(device=cfg.device)
    label = label or run.label
    name = name or label
    ref = reference or Reference.of(run, evaluator, cfg)
    test = run.load_split("test")
    g = torch.Generator().manual_seed(cfg.seed)
    rec: dict = dict.fromkeys(KEYS)
    rec.update(model=run.model_spec["name"], run=str(run.path), label=label)
    rec["params"] = sum(p.numel() for p in model.parameters())
    rec.update(run.training_record())
    model.sample_cond(1)  # a model compare cannot sample fails here, before any measuring

    say(f"{label}: likelihood")
    _likelihood(run, model, test, cfg, rec, g, say)
    if rec["nats"] is not None:
        rec["bits_per_dim"] = bits_per_dim(rec["nats"], model.dims)
        rec["bits_per_dim_ci"] = [bits_per_dim(v, model.dims) for v in rec["nats_ci"]]

    if cfg.compress_images and codable(model):
        say(f"{label}: compression")
        rec.update(_compression(model, test, cfg.compress_images))

    times = _timing(model, cfg)
    rec["sample_seconds"], rec["timing_runs"] = statistics.median(times), len(times)
    rec["sample_seconds_range"] = [min(times), max(times)]
    n = cfg.samples
    cached = sample_cache_path(run, n, cfg)
    if cfg.max_sample_seconds is not None and not (cached and cached.is_file()):
        # Sampling time grows at most linearly with n (batches amortise the per-pixel steps,
        # so this errs towards fewer samples); samples already in the cache cost nothing.
        n = min(n, max(16, int(16 * cfg.max_sample_seconds / rec["sample_seconds"])))
    fake = draw_samples(run, model, n, cfg, say)
    if cfg.naive_timing and isinstance(model, AutoregressiveModel) and model.has_cached_sampler():
        rec["sample_seconds_naive"] = statistics.median(_timing(model, cfg, "naive"))
    say(f"{label}: sample metrics")
    rec.update(sample_metrics(fake, ref, evaluator, out, name, cfg))
    if model.cond_kind == "class":
        _class_grid(fake, model, run, out, name, rec)
    if (
        model.nats_kind == "exact" and model.cond_kind is None
    ):  # drawn with the others' by the report
        rec["receptive_field"] = receptive_field(model)
    return rec


def _class_grid(fake: torch.Tensor, model, run: Run, out: Path, name: str, rec: dict) -> None:
    """A class-conditional model's samples, one row a class (they were drawn with the
    classes in turn: image k of class k mod N)."""
    classes = model.num_classes
    per_class = min(8, len(fake) // classes)
    if per_class < 1 or classes > 20:
        return
    rows = [fake[c::classes][:per_class] for c in range(classes)]
    rec["class_samples_image"] = f"{name}-classes.png"
    rec["class_names"] = list(run.classes or (str(c) for c in range(classes)))
    save_grid(torch.cat(rows), model.levels, out / rec["class_samples_image"], nrow=per_class)


def codable(model) -> bool:
    """Whether :mod:`pixelzoo.codec` can compress with ``model`` (exact, unconditional or by class)."""
    try:
        codec.check_codable(model)
    except codec.CodecError:
        return False
    return True


def _compression(model, test, n: int) -> dict:
    """The real code length of the first ``n`` test images in one file, and their NLL."""
    x = first_images(test, n)
    labels = test.labels[: len(x)] if model.cond_kind == "class" else None
    encoded = codec.encode(model, x, labels)
    return {
        "compressed_bits_per_dim": encoded.bits_per_dim,
        "compressed_nll_bits_per_dim": encoded.ideal_bits_per_dim,
        "compressed_bits_back": bitsback.codes_with_bits_back(model),
        "compressed_images": len(x),
    }


def measure_data(
    run_dir, out: Path, evaluator, cfg: MeasureConfig, *, reference: Reference | None = None,
    name: str = "data",
) -> dict:  # fmt: skip
    """The sample metrics of held-out real images: training images against the test images."""
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    ref = reference or Reference.of(run, evaluator, cfg)
    rec: dict = dict.fromkeys(KEYS)
    rec.update(model="data", run=None, label=f"data ({run.data_name} train vs test)")
    rec.update(sample_metrics(ref.train, ref, evaluator, out, name, cfg, fake_is_training=True))
    if cfg.compress_images:  # the everyday codecs, on the images the models compress
        test = run.load_split("test")
        x = first_images(test, cfg.compress_images)
        rec["lossless_baselines"] = lossless.measure(x, test.levels)
        rec["compressed_images"] = len(x)
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
        # The same data in two folders (or one folder named from two places): say how to join them.
        hint = ""
        if len({key[:2] + key[3:] for key in seen}) == 1:
            hint = "; if these are the same images, --data-dir FOLDER reads every run's from it"
        raise InputError(f"compare needs runs on one dataset, got {desc}{hint}")
    first = runs[0]
    return {"data": first.data_name, "image_shape": first.image_shape, "levels": first.levels}
