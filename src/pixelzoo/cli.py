"""The ``pixelzoo`` command: thin wrappers that parse arguments and call the library.

    pixelzoo train [--model NAME --data NAME --out RUN ...]   train (defaults: PixelCNN on digits)
    pixelzoo train --resume RUN                               continue an interrupted run
    pixelzoo evaluate RUN [--split test] [--json]             exact NLL: nats and bits/dim
    pixelzoo sample RUN -n 16 --out samples.png [--seed 0]    a PNG grid [--class 3] [--sampler naive]
    pixelzoo reconstruct RUN -n 8 --samples 4 --out r.png     auto-encoder: decodings of codes
    pixelzoo complete RUN --data NAME --rows 14 -n 8 --out c.png
    pixelzoo receptive-field [MODEL|RUN ...] --out rf.png     receptive fields by gradients
    pixelzoo train-evaluator --data mnist --out EVAL          the classifier behind FID and modes
    pixelzoo compare RUN... --evaluator EVAL --out REPORT     the comparison report (--quick: all on digits)
    pixelzoo models | pixelzoo datasets                       what is available

Errors caused by input are printed as one sentence (``error: ...``), exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from pixelzoo import data as datasets
from pixelzoo import models
from pixelzoo.errors import ConfigError, PixelzooError
from pixelzoo.sampling import SAMPLERS
from pixelzoo.training import TrainConfig, load_model, load_split, train
from pixelzoo.training.trainer import resolve_device, resolve_preset
from pixelzoo.utils.images import save_grid


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_sets(cfg: TrainConfig, pairs: list[str]) -> TrainConfig:
    """``--set key=value``: a model setting, a training setting, or ``data.OPTION``."""
    model_fields = {f.name for f in dataclasses.fields(models.get(cfg.model).config_cls)}
    train_fields = set(TrainConfig.field_names()) - {"overrides", "data_options"}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, text = pair.split("=", 1)
        if key.startswith("data."):
            cfg.data_options[key[5:]] = _parse_value(text)
        elif key in model_fields:
            cfg.overrides[key] = _parse_value(text)
        elif key in train_fields:
            setattr(cfg, key, TrainConfig.coerce(key, text))
        else:
            raise ConfigError(
                f"--set {key}: not a setting of model {cfg.model!r} ({', '.join(sorted(model_fields))}), "
                f"a training setting ({', '.join(sorted(train_fields))}) or data.OPTION"
            )
    return cfg


def cmd_train(args) -> int:
    cfg = TrainConfig(
        model=args.model,
        preset=args.preset,
        data=args.data,
        data_dir=args.data_dir,
        steps=args.steps,
        epochs=args.epochs,
        minutes=args.minutes,
        seed=args.seed,
        device=args.device,
        cond=args.cond,
    )
    if args.batch_size is not None:
        cfg.batch_size = args.batch_size
    if args.lr is not None:
        cfg.lr = args.lr
    if args.resume:
        run_dir, resume = Path(args.resume), True
    else:
        models.get(cfg.model)  # unknown names fail before anything is written
        datasets.options(cfg.data)
        apply_sets(cfg, args.set)
        run_dir = Path(args.out or f"runs/{cfg.model}-{cfg.data}-{time.strftime('%Y%m%d-%H%M%S')}")
        resume = False
    if args.dry_run:
        cfg.validate()
        models.resolve_config(cfg.model, resolve_preset(cfg), **cfg.overrides)
        print(json.dumps({"run_dir": str(run_dir), "train": dataclasses.asdict(cfg)}, indent=2))
        return 0
    print(f"{'resuming' if resume else 'training'} run in {run_dir}", file=sys.stderr)
    result = train(cfg, run_dir, resume=resume, progress=not args.no_progress)
    valid = result["valid"]
    if valid:
        what = "NLL" if valid["nats_kind"] == "exact" else "NLL upper bound (-IWAE)"
        print(
            f"step {result['step']}: valid {what} {valid['nats']:.3f} nats/image, "
            f"{valid['bits_per_dim']:.4f} bits/dim (best {result['best_valid_nats']:.3f} nats)"
        )
    else:
        print(f"step {result['step']}: a GAN has no validation likelihood; see its sample grids")
    evaluate = "" if not valid else f"pixelzoo evaluate {run_dir}; "
    print(
        f"run saved in {run_dir}  (next: {evaluate}pixelzoo sample {run_dir} -n 16 --out samples.png)"
    )
    return 0


def cmd_train_evaluator(args) -> int:
    from pixelzoo.evaluation.classifier import EvaluatorTraining, train_evaluator

    options = {}
    for pair in args.set:
        key, sep, text = pair.partition("=")
        if not sep or not key.startswith("data."):
            raise ConfigError(f"--set here takes data.OPTION=VALUE, got {pair!r}")
        options[key[5:]] = _parse_value(text)
    datasets.options(args.data)  # an unknown dataset fails before anything is written
    cfg = EvaluatorTraining(
        data=args.data,
        data_dir=args.data_dir,
        data_options=options,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    run_dir = Path(args.out or f"runs/evaluator-{args.data}")
    print(f"training the evaluator classifier in {run_dir}", file=sys.stderr)
    result = train_evaluator(cfg, run_dir, progress=not args.no_progress)
    print(
        f"evaluator saved in {run_dir}: valid accuracy {result['valid_accuracy']:.4f}, "
        f"test accuracy {result['test_accuracy']:.4f}"
    )
    return 0


def cmd_compare(args) -> int:
    from pixelzoo.evaluation.ais import AISConfig
    from pixelzoo.report import MeasureConfig, compare, quick

    out = Path(args.out or f"reports/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.quick:
        if args.runs:
            raise ConfigError("--quick trains its own runs; give either run folders or --quick")
        result = quick(out, progress=not args.no_progress)
    else:
        cfg = MeasureConfig(
            samples=args.samples,
            nll_images=args.nll_images,
            ais=not args.no_ais,
            ais_images=args.ais_images,
            ais_config=AISConfig(steps=args.ais_steps, chains=args.ais_chains),
            naive_timing=not args.no_naive_timing,
            seed=args.seed,
        )
        cfg.ais_config.validate()
        result = compare(
            args.runs,
            out,
            evaluator_dir=args.evaluator,
            inception=args.inception,
            cfg=cfg,
            progress=not args.no_progress,
        )
    print(f"wrote {out / 'report.html'}, {out / 'report.md'} and {out / 'metrics.jsonl'}")
    print((out / "report.md").read_text().split("## Reading")[0].split("\n\n", 1)[-1].strip())
    return 0 if result["records"] else 1


def cmd_evaluate(args) -> int:
    from pixelzoo.evaluation import evaluate_nll

    model = load_model(args.run, args.checkpoint, resolve_device(args.device))
    split = load_split(args.run, args.split, args.data_dir)
    result = evaluate_nll(model, split, args.batch_size, progress=not args.json)
    given = {"class": " given each image's label"}.get(model.cond_kind, "")
    if model.cond_optional:  # an auto-encoder: cond=None is the image's own code
        given = " given each image's own code (a reconstruction NLL, not a likelihood of x)"
    result["conditioned_on"] = given.removeprefix(" given ") or None
    result["nats_kind"] = model.nats_kind
    if model.nats_kind == "bound":
        given += f" (an upper bound: -IWAE with k={model.config.iwae_samples})"
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.split}: {result['nats']:.4f} nats/image, {result['bits_per_dim']:.5f} bits/dim "
            f"over {result['images']} images{given}"
        )
    return 0


def class_labels(model, n: int, chosen: int | None) -> torch.Tensor | None:
    """``cond`` for ``n`` samples: all of class ``chosen``, or classes 0..N-1 in turn."""
    if model.cond_kind != "class":
        if chosen is not None:
            raise ConfigError(
                f"--class needs a class-conditional model; {model.registry_name} is not"
            )
        return None
    if chosen is None:
        return model.default_cond(n)
    if not 0 <= chosen < model.num_classes:
        raise ConfigError(f"--class must be in 0..{model.num_classes - 1}, got {chosen}")
    return torch.full((n,), chosen, dtype=torch.long)


def sampler_arg(parser) -> None:
    parser.add_argument(
        "--sampler",
        choices=list(SAMPLERS),
        default="auto",
        help="cached: each layer computed once per position (pixelcnn, gated_pixelcnn, "
        "pixelcnn_pp); naive: the whole network per draw (the reference); auto: cached "
        "where the model has it. Both give the same images for a seed.",
    )


def cmd_sample(args) -> int:
    model = load_model(args.run, args.checkpoint, resolve_device(args.device))
    if model.cond_optional:  # an auto-encoder decodes codes of given images
        raise ConfigError(
            f"{model.registry_name} decodes codes of given images: use pixelzoo reconstruct "
            f"RUN --out r.png"
        )
    cond = class_labels(model, args.n, args.class_)
    g = torch.Generator().manual_seed(args.seed)
    x = model.sample(args.n, cond, generator=g, progress=True, sampler=args.sampler)
    nrow = args.nrow or (model.num_classes if cond is not None and args.class_ is None else None)
    save_grid(x, model.levels, args.out, nrow=nrow)
    which = f" of class {args.class_}" if args.class_ is not None else ""
    print(f"wrote {args.n} samples{which} to {args.out}")
    return 0


def _run_split(args, model):
    """The run's dataset split ``args.split`` (or ``args.data``), checked against the model."""
    split = load_split(args.run, args.split, args.data_dir, dataset=args.data)
    if tuple(split.image_shape) != tuple(model.image_shape) or split.levels != model.levels:
        raise ConfigError(
            f"dataset {split.name!r} has images {split.image_shape} with {split.levels} levels; "
            f"the model expects {model.image_shape} with {model.levels}"
        )
    return split


def cmd_reconstruct(args) -> int:
    model = load_model(args.run, args.checkpoint, resolve_device(args.device))
    if not hasattr(model, "reconstruct"):
        raise ConfigError(
            f"{model.registry_name} has no encoder; reconstruct needs a pixelcnn_ae run"
        )
    split = _run_split(args, model)
    n = min(args.n, len(split))
    originals, _ = split.get_batch(torch.arange(n), torch.Generator().manual_seed(args.seed))
    g = torch.Generator().manual_seed(args.seed)
    decoded = model.reconstruct(
        originals, args.samples, g, progress=True, sampler=args.sampler
    ).cpu()
    # Each row of the grid: the image, then decodings of its code.
    grid = torch.cat([originals[:, None], decoded], 1).flatten(0, 1)
    save_grid(grid, model.levels, args.out, nrow=args.samples + 1)
    print(f"wrote {n} images x {args.samples} decodings of their codes to {args.out}")
    return 0


def cmd_complete(args) -> int:
    model = load_model(args.run, args.checkpoint, resolve_device(args.device))
    if not isinstance(model, models.AutoregressiveModel):
        raise ConfigError(
            f"{model.registry_name} cannot complete images: completion samples the missing "
            f"rows given the kept ones, which needs an autoregressive model"
        )
    split = _run_split(args, model)
    n = min(args.n, len(split))
    originals, labels = split.get_batch(torch.arange(n), torch.Generator().manual_seed(args.seed))
    given = originals.repeat_interleave(args.completions, 0)
    cond = None
    if model.cond_kind == "class":  # complete each image given its true class
        if labels is None:
            raise ConfigError(
                f"the model is class-conditional; dataset {split.name!r} has no labels"
            )
        cond = labels.repeat_interleave(args.completions, 0)
    elif model.cond_optional:  # an auto-encoder: given the code of the whole image
        cond = model.encode(given.to(next(model.parameters()).device))
    g = torch.Generator().manual_seed(args.seed)
    filled = model.complete(
        given, args.rows, cond, generator=g, progress=True, sampler=args.sampler
    ).cpu()
    # Each row of the grid: the occluded input, the completions, the original.
    occluded = originals.clone()
    occluded[:, :, args.rows :] = 0
    rows = []
    for k in range(n):
        rows += [
            occluded[k : k + 1],
            filled[k * args.completions : (k + 1) * args.completions],
            originals[k : k + 1],
        ]
    save_grid(torch.cat(rows), model.levels, args.out, nrow=args.completions + 2)
    print(
        f"wrote {n} images x {args.completions} completions (top {args.rows} rows kept) to {args.out}"
    )
    return 0


def _image_shape(text: str) -> tuple[int, int, int]:
    """argparse type: ``C,H,W``."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W with positive sizes, got {text!r}")
    return shape


def cmd_receptive_field(args) -> int:
    from pixelzoo.evaluation import plot_receptive_fields, receptive_field

    fields = {}
    for item in args.models:
        if Path(item).is_dir():  # a run: its trained weights
            model, label = load_model(item, args.checkpoint, "cpu"), Path(item).name
        else:  # a model name: fresh weights at the preset (the architecture's field)
            torch.manual_seed(args.seed)
            model = models.build(item, args.shape, args.levels, args.preset)
            label = item
        pixel = tuple(args.pixel) if args.pixel else None
        fields[label] = receptive_field(model, pixel, seed=args.seed)
    plot_receptive_fields(fields, args.out)
    summary = {
        name: {
            "pixel": list(rf.pixel),
            "blind_spot_pixels": rf.blind_spot,
            "past_pixels": int(rf.past.sum()),
            "future_pixels_seen": rf.future_seen,
        }
        for name, rf in fields.items()
    }
    if args.json:
        print(json.dumps({"out": str(args.out), "models": summary}))
    else:
        for name, v in summary.items():
            print(
                f"{name}: pixel {tuple(v['pixel'])} misses {v['blind_spot_pixels']} of "
                f"{v['past_pixels']} earlier pixels, sees {v['future_pixels_seen']} later ones"
            )
        print(f"wrote {args.out}")
    return 0


def cmd_models(args) -> int:
    for name in models.names():
        entry = models.get(name)
        print(f"{name:16s} {entry.summary}")
        for preset, values in entry.presets.items():
            print(f"    preset {preset:16s} {values}")
    return 0


def cmd_datasets(args) -> int:
    for name in datasets.names():
        print(f"{name:16s} options: {', '.join(datasets.options(name)) or '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pixelzoo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    t = sub.add_parser(
        "train", help="train a model (defaults: PixelCNN on the digits)", formatter_class=fmt
    )
    t.add_argument("--model", default="pixelcnn", help=f"one of: {', '.join(models.names())}")
    t.add_argument(
        "--preset",
        default=None,
        help="model preset (default: the one named after the data, else 'default')",
    )
    t.add_argument("--data", default="digits", help=f"one of: {', '.join(datasets.names())}")
    t.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the dataset files (default: download cache)",
    )
    t.add_argument("--out", default=None, help="run folder (default: runs/MODEL-DATA-TIME)")
    t.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run from its last checkpoint",
    )
    t.add_argument("--steps", type=positive_int, default=None, help="stop after this many steps")
    t.add_argument(
        "--epochs", type=positive_int, default=None, help="stop after this many epochs (default 20)"
    )
    t.add_argument(
        "--minutes", type=float, default=None, help="stop after this many minutes of training"
    )
    t.add_argument(
        "--batch-size", type=positive_int, default=None, help="global batch size (default 64)"
    )
    t.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default: the model's, 1e-3; dcgan 2e-4)",
    )
    t.add_argument(
        "--cond",
        default=None,
        choices=["class"],
        help="'class': train p(x | label) on the data's labels (gated_pixelcnn)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model setting (e.g. blocks=15), training setting (e.g. lr_decay=0.9999) or data.OPTION",
    )
    t.add_argument(
        "--dry-run", action="store_true", help="print the resolved configuration and exit"
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser(
        "train-evaluator",
        help="train the classifier behind FID/KID/IS and mode counts on labelled digit-like data",
        formatter_class=fmt,
    )
    v.add_argument("--data", default="digits", help="a labelled dataset: digits, mnist, ...")
    v.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    v.add_argument("--out", default=None, help="run folder (default: runs/evaluator-DATA)")
    v.add_argument(
        "--epochs", type=positive_int, default=None, help="default: 40 on digits, else 4"
    )
    v.add_argument("--batch-size", type=positive_int, default=128)
    v.add_argument("--lr", type=float, default=1e-3)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.OPTION=VALUE",
        help="a dataset option, e.g. data.binarize=dynamic for binary MNIST",
    )
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_train_evaluator)

    cp = sub.add_parser(
        "compare",
        help="measure runs side by side and write report.html/report.md/metrics.jsonl",
        formatter_class=fmt,
    )
    cp.add_argument("runs", nargs="*", metavar="RUN_DIR", help="trained runs on one dataset")
    cp.add_argument("--out", default=None, help="report folder (default: reports/compare-TIME)")
    cp.add_argument(
        "--quick",
        action="store_true",
        help="train PixelCNN, Gated PixelCNN, PixelCNN++, DCGAN and VAE on the digits, then compare",
    )
    cp.add_argument(
        "--evaluator",
        default=None,
        metavar="EVAL_DIR",
        help="a pixelzoo train-evaluator run: FID, KID, IS and modes",
    )
    cp.add_argument(
        "--inception",
        default=None,
        metavar="FILE",
        help="FID's Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth), for natural images",
    )
    cp.add_argument(
        "--samples", type=positive_int, default=1000, help="images for the sample metrics"
    )
    cp.add_argument(
        "--nll-images",
        type=positive_int,
        default=None,
        help="test images for the NLL (default: all)",
    )
    cp.add_argument("--no-ais", action="store_true", help="skip AIS for GANs and VAEs")
    cp.add_argument("--ais-images", type=positive_int, default=100)
    cp.add_argument("--ais-steps", type=positive_int, default=500)
    cp.add_argument("--ais-chains", type=positive_int, default=8)
    cp.add_argument(
        "--no-naive-timing",
        action="store_true",
        help="do not time the naive sampler of models with a cached one",
    )
    cp.add_argument("--seed", type=int, default=0)
    cp.add_argument("--no-progress", action="store_true", help="no progress bar")
    cp.set_defaults(func=cmd_compare)

    def run_args(q):
        q.add_argument("run", metavar="RUN_DIR")
        q.add_argument("--checkpoint", default="best", choices=["best", "last"])
        q.add_argument("--device", default="auto")

    e = sub.add_parser("evaluate", help="exact test NLL of a run", formatter_class=fmt)
    run_args(e)
    e.add_argument("--split", default="test", choices=list(datasets.SPLITS))
    e.add_argument("--data-dir", default=None)
    e.add_argument("--batch-size", type=positive_int, default=256)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw samples into a PNG grid", formatter_class=fmt)
    run_args(s)
    s.add_argument("-n", type=positive_int, default=16, help="number of samples")
    s.add_argument("--out", required=True, help="PNG file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nrow", type=positive_int, default=None, help="images per grid row")
    s.add_argument(
        "--class",
        dest="class_",
        type=int,
        default=None,
        help="class to sample (class-conditional runs; default: every class in turn)",
    )
    sampler_arg(s)
    s.set_defaults(func=cmd_sample)

    rc = sub.add_parser(
        "reconstruct",
        help="decode the codes of test images several times (pixelcnn_ae runs)",
        formatter_class=fmt,
    )
    run_args(rc)
    rc.add_argument("--data", default=None, help="dataset (default: the run's)")
    rc.add_argument("--data-dir", default=None)
    rc.add_argument("--split", default="test", choices=list(datasets.SPLITS))
    rc.add_argument("-n", type=positive_int, default=8, help="number of images")
    rc.add_argument("--samples", type=positive_int, default=4, help="decodings per image")
    rc.add_argument("--out", required=True, help="PNG file")
    rc.add_argument("--seed", type=int, default=0)
    sampler_arg(rc)
    rc.set_defaults(func=cmd_reconstruct)

    c = sub.add_parser(
        "complete", help="complete test images from their top rows", formatter_class=fmt
    )
    run_args(c)
    c.add_argument("--data", default=None, help="dataset (default: the run's)")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--split", default="test", choices=list(datasets.SPLITS))
    c.add_argument("--rows", type=int, required=True, help="rows kept from the top")
    c.add_argument("-n", type=positive_int, default=8, help="number of images")
    c.add_argument("--completions", type=positive_int, default=4, help="completions per image")
    c.add_argument("--out", required=True, help="PNG file")
    c.add_argument("--seed", type=int, default=0)
    sampler_arg(c)
    c.set_defaults(func=cmd_complete)

    r = sub.add_parser(
        "receptive-field",
        help="PNG of receptive fields measured by gradients (the blind spot made visible)",
        formatter_class=fmt,
    )
    r.add_argument(
        "models",
        nargs="*",
        default=["pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm"],
        metavar="MODEL_OR_RUN",
        help="model names (fresh weights at --preset) or run folders (trained weights)",
    )
    r.add_argument("--preset", default="binarized_mnist", help="preset for model names")
    r.add_argument("--shape", type=_image_shape, default=(1, 28, 28), help="C,H,W for model names")
    r.add_argument("--levels", type=int, default=2, help="levels for model names")
    r.add_argument("--pixel", type=int, nargs=2, metavar=("ROW", "COL"), help="default: centre")
    r.add_argument("--checkpoint", default="best", choices=["best", "last"])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default="receptive_field.png", help="PNG file")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=cmd_receptive_field)

    sub.add_parser("models", help="list models and presets").set_defaults(func=cmd_models)
    sub.add_parser("datasets", help="list datasets and options").set_defaults(func=cmd_datasets)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PixelzooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; the last checkpoint is intact (resume with pixelzoo train --resume RUN_DIR)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
