"""The pixelzoo command: subcommands that parse arguments, call the library and print.

    pixelzoo train [--model NAME --data NAME --out RUN ...]   train (defaults: PixelCNN on digits)
    pixelzoo train --resume RUN [--steps N --lr LR ...]       continue an interrupted run
    pixelzoo train --config RUN/config.json --out NEW         replay a run's settings
    pixelzoo evaluate RUN [--split test] [--json]             exact NLL: nats and bits/dim
    pixelzoo sample RUN -n 16 --out samples.png [--seed 0]    a PNG grid [--class 3] [--sampler naive]
    pixelzoo reconstruct RUN -n 8 --samples 4 --out r.png     auto-encoder: decodings of codes
    pixelzoo complete RUN --data NAME --rows 14 -n 8 --out c.png
    pixelzoo compress RUN [IMAGE.png ...] --out F.pzc          lossless code from the likelihood
    pixelzoo decompress RUN F.pzc --out DIR|F.npz             ... and back, bit for bit
    pixelzoo export RUN --out DIR                             a pretrained folder with a model card
    pixelzoo receptive-field [MODEL|RUN ...] --out rf.png     receptive fields by gradients
    pixelzoo train-evaluator --data mnist --out EVAL          the classifier behind FID and modes
    pixelzoo compare RUN... --evaluator EVAL --out REPORT     the comparison report (--quick: all on digits)
    pixelzoo models | datasets | settings MODEL               what is available
    pixelzoo doctor [--json]                                  versions, devices, bf16, data, tools

RUN is a run folder, a pretrained folder (pixelzoo export), pretrained:NAME (shipped
weights: pixelzoo models lists them) or a Hugging Face Hub id OWNER/REPO.
Errors caused by input are printed as one sentence ("error: ..."), exit status 2.
Heavy modules (torch) are imported inside main, with Ctrl-C held until they are loaded, so
that an interrupt at any moment is an ordinary interruption (one line, exit status 130).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from pixelzoo.utils.settings import SEED_LIMIT  # light: no torch before main


# ---------------------------------------------------------------------- argument types
def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def seed(text: str) -> int:
    """argparse type: a seed in 0..2^63-1 (what torch generators take)."""
    value = _whole(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be in 0..2^63-1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def image_shape(text: str) -> tuple[int, int, int]:
    """argparse type: ``C,H,W``."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W with positive sizes, got {text!r}")
    return shape


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; '(default: X)' only where a default says something."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default not in (None, False, [], argparse.SUPPRESS)
            and "default" not in text
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


# ---------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from pixelzoo.training import TrainConfig, launch

    given = {
        k: getattr(args, k)
        for k in (
            "model",
            "preset",
            "data",
            "data_dir",
            "steps",
            "epochs",
            "minutes",
            "batch_size",
            "lr",
            "seed",
            "device",
            "cond",
        )  # fmt: skip
        if getattr(args, k) is not None
    }
    if args.resume:
        if args.config or args.out or args.dry_run:
            raise _config_error(
                "--resume continues a run in its own folder: give it without --config, --out or --dry-run"
            )
        print(f"resuming run in {args.resume}", file=sys.stderr)
        result = _interruptible(
            lambda: launch.resume_run(
                args.resume, given, sets=args.set, progress=not args.no_progress
            ),
            args.resume,
        )
        return _report_training(result, args.resume)
    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    for key, value in given.items():
        setattr(cfg, key, value)
    cfg = cfg.with_sets(args.set)
    run_dir = Path(args.out or f"runs/{cfg.model}-{cfg.data}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.dry_run:
        summary = launch.plan(cfg).summary()
        print(json.dumps({"run_dir": str(run_dir), **summary}, indent=2, default=str))
        return 0
    print(f"training run in {run_dir}", file=sys.stderr)
    result = _interruptible(
        lambda: launch.train(cfg, run_dir, progress=not args.no_progress), run_dir
    )
    return _report_training(result, run_dir)


def _interruptible(fn, run_dir):
    """Run ``fn``; on Ctrl-C say what is left in ``run_dir`` and exit 130."""
    try:
        return fn()
    except KeyboardInterrupt:
        from pixelzoo.runs import Checkpoints

        try:
            step = Checkpoints(Path(run_dir) / "checkpoints").step("last")
        except Exception:  # noqa: BLE001 - a best-effort message on the way out
            step = None
        if step is None:
            print("interrupted before the first checkpoint; nothing was kept", file=sys.stderr)
        else:
            print(
                f"interrupted; the last checkpoint (step {step}) is intact: resume with "
                f"pixelzoo train --resume {run_dir}",
                file=sys.stderr,
            )
        raise SystemExit(130) from None


def _report_training(result: dict, run_dir) -> int:
    if result.get("already_finished"):
        print(
            f"the run in {run_dir} had already finished at step {result['step']}; give a larger "
            "--steps, --epochs or --minutes to train it further"
        )
        return 0
    valid = result["valid"]
    if valid and "nats" in valid:
        what = "NLL" if valid["nats_kind"] == "exact" else "NLL upper bound (-IWAE)"
        print(
            f"step {result['step']}: valid {what} {valid['nats']:.3f} nats/image, "
            f"{valid['bits_per_dim']:.4f} bits/dim (best {result['best_valid']:.3f} nats)"
        )
        nxt = f"pixelzoo evaluate {run_dir}; "
    else:
        print(f"step {result['step']}: a GAN has no validation likelihood; see its sample grids")
        nxt = ""
    s = result["seconds"]
    print(
        f"time: {s['wall']:.1f} s in all: {s['training']:.1f} s of training steps, "
        f"{s['validation']:.1f} s validating ({s['validation'] / max(s['wall'], 1e-9):.0%}, "
        f"on {result['valid_images']:,} images), {s['samples']:.1f} s of sample grids, "
        f"{s['checkpoints']:.1f} s of checkpoints"
    )
    print(f"run saved in {run_dir}  (next: {nxt}pixelzoo sample {run_dir} -n 16 --out samples.png)")
    return 0


def cmd_train_evaluator(args) -> int:
    from pixelzoo.training import EvaluatorTraining, train_evaluator
    from pixelzoo.utils.settings import parse_text

    options = {}
    for pair in args.set:
        key, sep, text = pair.partition("=")
        if not sep or not key.startswith("data."):
            raise _config_error(f"--set here takes data.OPTION=VALUE, got {pair!r}")
        options[key[5:]] = parse_text(text)
    cfg = EvaluatorTraining(
        data=args.data,
        data_dir=args.data_dir,
        data_options=options,
        epochs=args.epochs,
        minutes=args.minutes,
        width=args.width,
        augment=args.augment,
        batchnorm=args.batchnorm,
        amp=args.amp,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
    )
    run_dir = Path(args.out or f"runs/evaluator-{args.data}")
    print(f"training the evaluator classifier in {run_dir}", file=sys.stderr)
    result = _interruptible(
        lambda: train_evaluator(cfg, run_dir, progress=not args.no_progress), run_dir
    )
    print(
        f"evaluator saved in {run_dir}: valid accuracy {result['valid_accuracy']:.4f}, "
        f"test accuracy {result['test_accuracy']:.4f}"
    )
    return 0


def cmd_compare(args) -> int:
    from pixelzoo.evaluation.ais import AISConfig
    from pixelzoo.report import MeasureConfig, compare, quick
    from pixelzoo.runs.pretrained import resolve

    out = Path(args.out or f"reports/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.quick:
        if args.runs:
            raise _config_error("--quick trains its own runs; give either run folders or --quick")
        result = quick(out, progress=not args.no_progress, device=args.device)
    else:
        cfg = MeasureConfig(
            samples=args.samples,
            nll_images=args.nll_images,
            ais=not args.no_ais,
            ais_images=args.ais_images,
            ais_config=AISConfig(steps=args.ais_steps, chains=args.ais_chains),
            ais_target_gap=args.ais_target_gap,
            ais_max_steps=args.ais_max_steps,
            naive_timing=not args.no_naive_timing,
            compress_images=args.compress_images,
            bootstrap=args.bootstrap,
            device=_device(args),
            seed=args.seed,
        )
        result = compare(
            [resolve(r) for r in args.runs],  # folders, pretrained:NAME or a Hub id
            out,
            evaluator_dir=args.evaluator,
            inception=args.inception,
            cfg=cfg,
            labels=args.label or None,
            progress=not args.no_progress,
            data_dir=args.data_dir,
        )
    print(f"wrote {out / 'report.html'}, {out / 'report.md'} and {out / 'metrics.jsonl'}")
    print(result["summary"])
    return 0 if result["records"] else 1


def _device(args) -> str:
    from pixelzoo.training.trainer import resolve_device

    return resolve_device(args.device)


def cmd_evaluate(args) -> int:
    from pixelzoo.evaluation.nll import describe_nll, evaluate_nll
    from pixelzoo.runs.pretrained import open_run

    run = open_run(args.run)
    model = run.load_model(args.checkpoint, _device(args))
    split = run.load_split(args.split, args.data_dir)
    result = evaluate_nll(model, split, args.batch_size, progress=not args.json)
    print(json.dumps(result) if args.json else describe_nll(result, model))
    return 0


def sampler_arg(parser) -> None:
    from pixelzoo import models
    from pixelzoo.sampling import SAMPLERS

    cached = [
        n
        for n in models.names()
        if getattr(models.get(n).cls, "has_cached_sampler", lambda: False)()
    ]
    parser.add_argument(
        "--sampler",
        choices=list(SAMPLERS),
        default="auto",
        help=f"cached: each layer computed once per position ({', '.join(cached)}); naive: the "
        "whole network per draw (the reference); auto: cached where the model has it. Both give "
        "the same images for a seed.",
    )


def cmd_sample(args) -> int:
    import torch

    from pixelzoo.data.images import save_grid, save_npz, save_png_folder
    from pixelzoo.runs.pretrained import open_run

    run = open_run(args.run)
    model = run.load_model(args.checkpoint, _device(args))
    cond = model.sample_cond(args.n, run.class_index(args.class_))
    g = torch.Generator().manual_seed(args.seed)
    x = model.sample(args.n, cond, generator=g, progress=True, sampler=args.sampler).cpu()
    which = f" of class {args.class_}" if args.class_ is not None else ""
    if args.format == "npz":
        save_npz(x, model.levels, args.out)
        where = f"{args.out} (images: uint8 [N, C, H, W] at {model.levels} levels; images_8bit)"
    elif args.format == "png-folder":
        save_png_folder(x, model.levels, args.out)
        where = f"{args.out}/ as 8-bit PNGs"
    else:
        nrow = args.nrow or (
            model.num_classes if cond is not None and args.class_ is None else None
        )
        save_grid(x, model.levels, args.out, nrow=nrow)
        where = args.out
    print(f"wrote {args.n} samples{which} to {where}")
    return 0


def cmd_compress(args) -> int:
    import torch

    from pixelzoo import codec
    from pixelzoo.data.images import load_images
    from pixelzoo.errors import InputError
    from pixelzoo.runs.pretrained import open_run
    from pixelzoo.utils.io import atomic_write_bytes

    if args.images:
        if args.data is not None:
            raise InputError("give image files or --data, not both")
        run = open_run(args.run)
        model = run.load_model(args.checkpoint, _device(args))
        x = load_images(args.images, model.image_shape, model.levels)
        labels = None
        if model.cond_kind == "class":
            if args.class_ is None:
                raise InputError(
                    f"{model.registry_name} is class-conditional: give the images' --class"
                )
            labels = torch.full((len(x),), run.class_index(args.class_), dtype=torch.long)
        what = f"{len(x)} image file(s)"
    else:
        model, split = _run_split(args)
        n = min(args.n or len(split), len(split))
        x, labels = split.get_batch(torch.arange(n), torch.Generator().manual_seed(args.seed))
        if model.cond_kind != "class":
            labels = None
        what = f"{n} {args.split} images of {split.name}"
    encoded = codec.encode(model, x, labels, progress=not args.no_progress)
    atomic_write_bytes(args.out, encoded.data)
    print(
        f"compressed {what} into {args.out}: {len(encoded.data):,} bytes, "
        f"{encoded.bits_per_dim:.4f} bits/dim ({encoded.ideal_label}: "
        f"{encoded.ideal_bits_per_dim:.4f} bits/dim; raw {math.log2(model.levels):g} bits/dim)"
    )
    return 0


def cmd_decompress(args) -> int:
    from pathlib import Path

    from pixelzoo import codec
    from pixelzoo.data.images import save_npz, save_png_folder
    from pixelzoo.errors import InputError
    from pixelzoo.runs.pretrained import open_run

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give a .pzc file") from None
    model = open_run(args.run).load_model(args.checkpoint, _device(args))
    x, labels = codec.decode(model, data, progress=not args.no_progress, source=str(path))
    if str(args.out).endswith(".npz"):
        save_npz(x, model.levels, args.out)
        where = f"{args.out} (images: uint8 [N, C, H, W] at {model.levels} levels)"
    else:
        save_png_folder(x, model.levels, args.out)
        where = f"{args.out}/ as 8-bit PNGs"
    bpd = 8 * len(data) / (len(x) * model.dims)
    given = (
        "" if labels is None else f" (labels {labels.tolist()[:10]}{'...' if len(x) > 10 else ''})"
    )
    print(f"decompressed {len(x)} images{given} from {path} ({bpd:.4f} bits/dim) to {where}")
    return 0


def _run_split(args):
    """The run's model and split ``args.split`` of its dataset (or of ``args.data``), checked."""
    from pixelzoo.errors import ConfigError
    from pixelzoo.runs.pretrained import open_run

    run = open_run(args.run)
    model = run.load_model(args.checkpoint, _device(args))
    split = run.load_split(args.split, args.data_dir, dataset=args.data)
    if tuple(split.image_shape) != tuple(model.image_shape) or split.levels != model.levels:
        raise ConfigError(
            f"dataset {split.name!r} has images {split.image_shape} with {split.levels} levels; "
            f"the model expects {model.image_shape} with {model.levels}"
        )
    return model, split


def cmd_reconstruct(args) -> int:
    import torch

    from pixelzoo.data.images import save_grid
    from pixelzoo.errors import ConfigError
    from pixelzoo.sampling.grids import reconstruction_grid

    model, split = _run_split(args)
    if not hasattr(model, "reconstruct"):
        raise ConfigError(
            f"{model.registry_name} has no encoder; reconstruct needs a pixelcnn_ae run"
        )
    n = min(args.n, len(split))
    originals, _ = split.get_batch(torch.arange(n), torch.Generator().manual_seed(args.seed))
    grid, nrow = reconstruction_grid(
        model, originals, args.samples, torch.Generator().manual_seed(args.seed),
        sampler=args.sampler, progress=True,
    )  # fmt: skip
    save_grid(grid, model.levels, args.out, nrow=nrow)
    print(f"wrote {n} images x {args.samples} decodings of their codes to {args.out}")
    return 0


def cmd_complete(args) -> int:
    import torch

    from pixelzoo import models
    from pixelzoo.data.images import save_grid
    from pixelzoo.errors import ConfigError
    from pixelzoo.sampling.grids import completion_grid

    model, split = _run_split(args)
    if not isinstance(model, models.AutoregressiveModel):
        raise ConfigError(
            f"{model.registry_name} cannot complete images: completion samples the missing "
            f"rows given the kept ones, which needs an autoregressive model"
        )
    n = min(args.n, len(split))
    originals, labels = split.get_batch(torch.arange(n), torch.Generator().manual_seed(args.seed))
    grid, nrow = completion_grid(
        model, originals, labels, args.rows, args.completions,
        torch.Generator().manual_seed(args.seed), sampler=args.sampler, progress=True,
    )  # fmt: skip
    save_grid(grid, model.levels, args.out, nrow=nrow)
    print(
        f"wrote {n} images x {args.completions} completions (top {args.rows} rows kept) to {args.out}"
    )
    return 0


def cmd_receptive_field(args) -> int:
    from pixelzoo.evaluation import plot_receptive_fields, receptive_fields

    fields = receptive_fields(
        args.models, preset=args.preset, shape=args.shape, levels=args.levels,
        pixel=tuple(args.pixel) if args.pixel else None, checkpoint=args.checkpoint,
        seed=args.seed,
    )  # fmt: skip
    plot_receptive_fields(fields, args.out)
    summary = {name: rf.summary() for name, rf in fields.items()}
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


CARD_CHECK_IMAGES = 500  # the first test images whose mean NLL a model card also gives


def cmd_export(args) -> int:
    from pixelzoo.evaluation.nll import describe_nll, evaluate_nll
    from pixelzoo.runs.pretrained import export, open_run

    run = open_run(args.run)
    measured = None
    if not args.no_measure:
        model = run.load_model(args.checkpoint, _device(args))
        if model.nats_kind in ("exact", "bound"):
            split = run.load_split("test", args.data_dir)
            measured = evaluate_nll(
                model, split, args.batch_size, progress=not args.no_progress, per_image=True
            )
            print(describe_nll(measured, model), file=sys.stderr)
            # The first images' mean too: what a quick check (the package's tests of
            # its shipped weights) re-measures without scoring the whole split.
            values = measured.pop("per_image")
            k = min(CARD_CHECK_IMAGES, len(values))
            measured["check"] = {"images": k, "nats": float(values[:k].mean())}
    out = export(run.path, args.out, which=args.checkpoint, measured=measured)
    print(f"exported {run.path} ({args.checkpoint} checkpoint) to {out}/ "
          "(config.json, model.safetensors, README.md)")  # fmt: skip
    return 0


def cmd_models(args) -> int:
    from pixelzoo import models
    from pixelzoo.models.pretrained import shipped

    for name in models.names():
        entry = models.get(name)
        cached = getattr(entry.cls, "has_cached_sampler", lambda: False)()
        print(f"{name:16s} {entry.summary}{' [cached sampler]' if cached else ''}")
        for preset, values in entry.presets.items():
            print(f"    preset {preset:22s} {values}")
    found = shipped()
    if found:
        print("\npretrained (pixelzoo sample pretrained:NAME -n 16 --out s.png):")
        for name in found:
            print(f"    pretrained:{name}")
    print("\nsettings of a model and of training: pixelzoo settings MODEL")
    return 0


def cmd_datasets(args) -> int:
    from pixelzoo import data as datasets

    for name in datasets.names():
        print(f"{name:16s} options: {', '.join(datasets.options(name)) or '-'}")
    return 0


def doctor_report() -> dict:
    """What this machine gives pixelzoo: versions, devices, bfloat16, threads, data, tools."""
    import importlib.util
    import platform
    import shutil

    import torch

    import pixelzoo
    from pixelzoo.data.download import cache_dir
    from pixelzoo.training.compiling import compiler_available
    from pixelzoo.training.trainer import fast_bfloat16

    cuda = torch.cuda.is_available()
    compiles, why_not = compiler_available("cpu")
    cache = cache_dir()
    shared = Path(os.environ.get("PIXELZOO_SHARED_DATA", Path.cwd().parent / "shared" / "data"))
    inception = os.environ.get("PIXELZOO_INCEPTION")
    return {
        "pixelzoo": pixelzoo.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],  # fmt: skip
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_cpu": bool(fast_bfloat16("cpu")),
        "bf16_cuda": bool(cuda and torch.cuda.is_bf16_supported()),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "compile_cpu": compiles,
        "compile_cpu_missing": why_not or None,
        "data_cache": str(cache),
        "cached_datasets": sorted(p.name for p in cache.iterdir() if p.is_dir())
        if cache.is_dir()
        else [],
        "shared_data": str(shared) if shared.is_dir() else None,
        "inception_weights": inception if inception and Path(inception).is_file() else None,
        "chromium": shutil.which("chromium") or shutil.which("chromium-browser"),
        "optional": {
            name: importlib.util.find_spec(mod) is not None
            for name, mod in (
                ("imagecodecs", "imagecodecs"),
                ("huggingface_hub", "huggingface_hub"),
                ("torch-fidelity", "torch_fidelity"),
                ("wandb", "wandb"),
            )
        },  # fmt: skip
    }


def cmd_doctor(args) -> int:
    info = doctor_report()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    yes = lambda ok, hint="": "yes" if ok else f"no{hint}"  # noqa: E731
    opt = info["optional"]
    lines = [
        f"pixelzoo {info['pixelzoo']}, Python {info['python']}, torch {info['torch']}",
        f"CPU: {info['cpu']} ({info['cpu_capability']}), {info['cpu_count']} cores, torch uses "
        f"{info['threads']} threads",
        f"bfloat16 on the CPU (--set amp=true doubles PixelCNN's throughput): {yes(info['bf16_cpu'])}",
        "torch.compile of long training runs on the CPU: "
        + (
            "yes (a C++ compiler is on PATH)"
            if info["compile_cpu"]
            else f"no ({info['compile_cpu_missing']})"
        ),
        "CUDA: "
        + (
            ", ".join(info["cuda"]) + f"; bfloat16 {yes(info['bf16_cuda'])}"
            if info["cuda"]
            else "no GPU"
        ),  # fmt: skip
        f"data cache: {info['data_cache']} ({', '.join(info['cached_datasets']) or 'empty'})",
        f"shared data: {info['shared_data'] or 'not found (PIXELZOO_SHARED_DATA)'}",
        f"Inception-v3 weights (PIXELZOO_INCEPTION): {info['inception_weights'] or 'not set'}",
        f"chromium, for the report test: {info['chromium'] or 'not found (apt-get install chromium)'}",
        f"imagecodecs (WebP/JPEG-XL baselines): {yes(opt['imagecodecs'], ' (pip install imagecodecs)')}",
        f"huggingface_hub (from_pretrained OWNER/REPO): {yes(opt['huggingface_hub'])}",
        f"torch-fidelity (the Inception cross-check test): {yes(opt['torch-fidelity'])}",
    ]
    print("\n".join(lines))
    return 0


def cmd_settings(args) -> int:
    from pixelzoo import models
    from pixelzoo.training import TrainConfig
    from pixelzoo.utils import settings

    groups = []
    if args.model:
        entry = models.get(args.model)
        preset = args.preset or "default"
        if preset not in entry.presets:
            raise _config_error(
                f"model {args.model!r} has no preset {preset!r}; valid presets: {', '.join(entry.presets)}"
            )
        groups.append(
            (
                f"model {args.model} (preset {preset}): --set KEY=VALUE",
                settings.describe(entry.config_cls, entry.presets[preset]),
            )  # fmt: skip
        )
    groups.append(
        ("training: --set KEY=VALUE (or a flag of train)", settings.describe(TrainConfig))
    )
    if args.json:
        print(json.dumps({title: rows for title, rows in groups}, default=str))
        return 0
    for title, rows in groups:
        print(title)
        for r in rows:
            allowed = f", {r['allowed']}" if r["allowed"] else ""
            print(f"  {r['name']} ({r['type']}{allowed}; default {r['default']!r})")
            if r["help"]:
                print(f"      {r['help']}")
        print()
    print("dataset options: --set data.OPTION=VALUE (pixelzoo datasets lists them)")
    return 0


def _config_error(message: str):
    from pixelzoo.errors import ConfigError

    return ConfigError(message)


# ---------------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    from pixelzoo import __version__, models
    from pixelzoo import data as datasets

    p = argparse.ArgumentParser(
        prog="pixelzoo",
        description="Train, sample, evaluate and compare image generative models: the PixelCNN "
        "family with exact likelihoods, and the GANs and VAE they are weighed against.",
        epilog=__doc__.split("\n\n")[1],
        formatter_class=HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"pixelzoo {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = HelpFormatter

    t = sub.add_parser(
        "train", help="train a model (default: PixelCNN on the digits)", formatter_class=fmt
    )
    t.add_argument(
        "--model", default=None, help=f"one of: {', '.join(models.names())} (default: pixelcnn)"
    )
    t.add_argument(
        "--preset",
        default=None,
        help="model preset (default: the one named after the data, else 'default')",
    )
    t.add_argument(
        "--data", default=None, help=f"one of: {', '.join(datasets.names())} (default: digits)"
    )
    t.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the dataset files (default: the download cache)",
    )
    t.add_argument("--out", default=None, help="run folder (default: runs/MODEL-DATA-TIME)")
    t.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run from its last checkpoint; --steps/--epochs/--minutes, "
        "--lr and logging settings may change, recorded at the step they take effect",
    )
    t.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="start from the settings in FILE: a run's config.json (replayed, with its "
        "full model settings) or a JSON file of training settings; flags and --set apply on top",
    )
    t.add_argument("--steps", type=positive_int, default=None, help="stop after this many steps")
    t.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="stop after this many epochs (default: 20 when no limit is given)",
    )
    t.add_argument(
        "--minutes",
        type=positive_float,
        default=None,
        help="stop after this many minutes of training",
    )
    t.add_argument(
        "--batch-size", type=positive_int, default=None, help="global batch size (default: 64)"
    )
    t.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="Adam learning rate (default: the model family's, 1e-3; dcgan 2e-4)",
    )
    t.add_argument(
        "--cond",
        default=None,
        choices=["class"],
        help="'class': train p(x | label) on the data's labels",
    )
    t.add_argument(
        "--seed", type=seed, default=None, help="seed of every random number generator (default: 0)"
    )
    t.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model setting (blocks=15), a training setting (lr_decay=0.9999, amp=true) "
        "or data.OPTION; pixelzoo settings MODEL lists them",
    )
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved configuration (what the run's config.json will hold) and exit",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser(
        "train-evaluator",
        formatter_class=fmt,
        help="train the classifier behind FID/KID/IS and mode counts on labelled data",
    )
    v.add_argument("--data", default="digits", help="a labelled dataset: digits, mnist, ...")
    v.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    v.add_argument("--out", default=None, help="run folder (default: runs/evaluator-DATA)")
    v.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="training epochs (default: 40 on digits, 12 on colour images, else 4)",
    )
    v.add_argument(
        "--minutes",
        type=positive_float,
        default=None,
        help="also stop after this many minutes of training (default: no limit)",
    )
    v.add_argument(
        "--width", type=positive_int, default=None, help="maps of the first of three stages (32)"
    )
    v.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random flips and shifts while training (default: on for colour images)",
    )
    v.add_argument(
        "--batchnorm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batch norm after every convolution (default: on for colour images)",
    )
    v.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast while training (default: on for colour images where "
        "bfloat16 is fast: CUDA or an AVX512-BF16 CPU)",
    )
    v.add_argument("--batch-size", type=positive_int, default=128, help="images per step")
    v.add_argument(
        "--lr", type=positive_float, default=1e-3, help="Adam learning rate (cosine schedule)"
    )
    v.add_argument("--seed", type=seed, default=0, help="seed of every random number generator")
    v.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
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
        formatter_class=fmt,
        help="measure runs side by side and write report.html/report.md/metrics.jsonl",
    )
    cp.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR",
        help="trained runs on one dataset: run or pretrained folders, pretrained:NAME",
    )
    cp.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME",
        help="the report's name for each run, in order (default: the run folder's name)",
    )
    cp.add_argument("--out", default=None, help="report folder (default: reports/compare-TIME)")
    cp.add_argument(
        "--data-dir",
        default=None,
        help="read every run's dataset from this folder (default: the folder each run records)",
    )
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
        help="FID's Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth), for natural "
        "images: with --evaluator too, the report adds Inception FID/KID/IS to the evaluator's",
    )
    cp.add_argument(
        "--samples", type=positive_int, default=1000, help="images for the sample metrics"
    )
    cp.add_argument(
        "--compress-images", type=count, default=100,
        help="test images each autoregressive model compresses into a real file, and PNG/WebP/"
        "JPEG-XL beside them (0: none)",
    )  # fmt: skip
    cp.add_argument(
        "--nll-images",
        type=positive_int,
        default=None,
        help="test images for the NLL (default: all)",
    )
    cp.add_argument("--no-ais", action="store_true", help="skip AIS for GANs and VAEs")
    cp.add_argument("--ais-images", type=positive_int, default=100, help="test images AIS runs on")
    cp.add_argument(
        "--ais-steps",
        type=positive_int,
        default=500,
        help="AIS intermediate distributions to start from (doubled towards the target gap)",
    )
    cp.add_argument("--ais-chains", type=positive_int, default=8, help="AIS chains per image")
    cp.add_argument(
        "--ais-target-gap",
        type=positive_float,
        default=1.0,
        help="the BDMC gap (nats/image) AIS doubles its steps until",
    )
    cp.add_argument(
        "--ais-max-steps",
        type=positive_int,
        default=16_000,
        help="the step budget of AIS; a figure that missed the target is marked loose",
    )
    cp.add_argument(
        "--bootstrap",
        type=positive_int,
        default=200,
        help="resamples for the bootstrap intervals (FID, KID, IS, modes)",
    )
    cp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    cp.add_argument(
        "--no-naive-timing",
        action="store_true",
        help="do not time the naive sampler of models with a cached one",
    )
    cp.add_argument("--seed", type=seed, default=0, help="seed of every random draw")
    cp.add_argument("--no-progress", action="store_true", help="no progress bar")
    cp.set_defaults(func=cmd_compare)

    def run_args(q):
        q.add_argument(
            "run", metavar="RUN", help="a run folder, a pretrained folder, pretrained:NAME or a "
            "Hugging Face Hub id OWNER/REPO",
        )  # fmt: skip
        q.add_argument(
            "--checkpoint",
            default="best",
            choices=["best", "last"],
            help="which checkpoint's weights",
        )
        q.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")

    x = sub.add_parser(
        "export", formatter_class=fmt,
        help="write a run as a pretrained folder (config.json, model.safetensors, model card)",
    )  # fmt: skip
    run_args(x)
    x.add_argument("--out", required=True, help="the folder to write")
    x.add_argument(
        "--no-measure", action="store_true", help="do not measure the test NLL for the model card"
    )
    x.add_argument(
        "--data-dir", default=None, help="folder holding the dataset files (default: the run's)"
    )
    x.add_argument("--batch-size", type=positive_int, default=256, help="images per batch")
    x.add_argument("--no-progress", action="store_true", help="no progress bar")
    x.set_defaults(func=cmd_export)

    e = sub.add_parser("evaluate", help="exact test NLL of a run", formatter_class=fmt)
    run_args(e)
    e.add_argument("--split", default="test", choices=list(datasets.SPLITS), help="dataset split")
    e.add_argument(
        "--data-dir", default=None, help="folder holding the dataset files (default: the run's)"
    )
    e.add_argument("--batch-size", type=positive_int, default=256, help="images per batch")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("sample", help="draw samples into a PNG grid", formatter_class=fmt)
    run_args(s)
    s.add_argument("-n", type=positive_int, default=16, help="number of samples")
    s.add_argument("--out", required=True, help="PNG file (grid), .npz file or folder (png-folder)")
    s.add_argument(
        "--format",
        default="grid",
        choices=["grid", "npz", "png-folder"],
        help="grid: one PNG of all samples; npz: the integer images; png-folder: one "
        "8-bit PNG a sample, for external tools (pytorch-fid, torch-fidelity)",
    )
    s.add_argument("--seed", type=seed, default=0, help="seed of the sampler")
    s.add_argument("--nrow", type=positive_int, default=None, help="images per grid row")
    s.add_argument(
        "--class",
        dest="class_",
        default=None,
        help="class to sample, by name (airplane) or number (0) (class-conditional runs; "
        "default: every class in turn)",
    )
    sampler_arg(s)
    s.set_defaults(func=cmd_sample)

    rc = sub.add_parser(
        "reconstruct",
        formatter_class=fmt,
        help="decode the codes of test images several times (pixelcnn_ae runs)",
    )
    run_args(rc)
    rc.add_argument("--data", default=None, help="dataset (default: the run's)")
    rc.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    rc.add_argument("--split", default="test", choices=list(datasets.SPLITS), help="dataset split")
    rc.add_argument("-n", type=positive_int, default=8, help="number of images")
    rc.add_argument("--samples", type=positive_int, default=4, help="decodings per image")
    rc.add_argument("--out", required=True, help="PNG file")
    rc.add_argument(
        "--seed", type=seed, default=0, help="seed of the images' choice and the sampler"
    )
    sampler_arg(rc)
    rc.set_defaults(func=cmd_reconstruct)

    c = sub.add_parser(
        "complete", help="complete test images from their top rows", formatter_class=fmt
    )
    run_args(c)
    c.add_argument("--data", default=None, help="dataset (default: the run's)")
    c.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    c.add_argument("--split", default="test", choices=list(datasets.SPLITS), help="dataset split")
    c.add_argument("--rows", type=int, required=True, help="rows kept from the top")
    c.add_argument("-n", type=positive_int, default=8, help="number of images")
    c.add_argument("--completions", type=positive_int, default=4, help="completions per image")
    c.add_argument("--out", required=True, help="PNG file")
    c.add_argument(
        "--seed", type=seed, default=0, help="seed of the images' choice and the sampler"
    )
    sampler_arg(c)
    c.set_defaults(func=cmd_complete)

    z = sub.add_parser(
        "compress",
        help="lossless compression with a model's likelihood (a real code of its NLL)",
        formatter_class=fmt,
    )
    run_args(z)
    z.add_argument("images", nargs="*", metavar="IMAGE", help="image files (else --data's split)")
    z.add_argument("--data", default=None, help="dataset (default: the run's)")
    z.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    z.add_argument("--split", default="test", choices=list(datasets.SPLITS), help="dataset split")
    z.add_argument("-n", type=positive_int, default=None, help="first N images (default: all)")
    z.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="label of the image files (class-conditional models)")  # fmt: skip
    z.add_argument("--seed", type=seed, default=0, help="seed of dynamic binarization")
    z.add_argument("--out", required=True, help="the compressed file (.pzc)")
    z.add_argument("--no-progress", action="store_true", help="no progress bar")
    z.set_defaults(func=cmd_compress)

    dz = sub.add_parser("decompress", help="decode a .pzc file with its model", formatter_class=fmt)
    run_args(dz)
    dz.add_argument("file", metavar="FILE.pzc")
    dz.add_argument("--out", required=True, help="a folder of PNGs, or FILE.npz")
    dz.add_argument("--no-progress", action="store_true", help="no progress bar")
    dz.set_defaults(func=cmd_decompress)

    r = sub.add_parser(
        "receptive-field",
        formatter_class=fmt,
        help="PNG of receptive fields measured by gradients (the blind spot made visible)",
    )
    r.add_argument(
        "models",
        nargs="*",
        default=["pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm"],
        metavar="MODEL_OR_RUN",
        help="model names (fresh weights at --preset) or run folders (trained weights)",
    )
    r.add_argument("--preset", default="binarized_mnist", help="preset for model names")
    r.add_argument("--shape", type=image_shape, default=(1, 28, 28), help="C,H,W for model names")
    r.add_argument("--levels", type=int, default=2, help="levels for model names")
    r.add_argument(
        "--pixel", type=int, nargs=2, metavar=("ROW", "COL"), help="the pixel (default: the centre)"
    )
    r.add_argument(
        "--checkpoint", default="best", choices=["best", "last"], help="checkpoint of runs"
    )
    r.add_argument("--seed", type=seed, default=0, help="seed of the fresh weights and the input")
    r.add_argument("--out", default="receptive_field.png", help="PNG file")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=cmd_receptive_field)

    sub.add_parser("models", help="list models and presets", formatter_class=fmt).set_defaults(
        func=cmd_models
    )
    sub.add_parser("datasets", help="list datasets and options", formatter_class=fmt).set_defaults(
        func=cmd_datasets
    )
    st = sub.add_parser(
        "settings",
        formatter_class=fmt,
        help="list the settings --set accepts: a model's (with a preset's values) and training's",
    )
    st.add_argument(
        "model", nargs="?", default=None, help="a model name (omit for training settings only)"
    )
    st.add_argument("--preset", default=None, help="show this preset's values (default: 'default')")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(func=cmd_settings)

    dr = sub.add_parser(
        "doctor", formatter_class=fmt,
        help="what this machine gives pixelzoo: versions, devices, bfloat16, threads, data, tools",
    )  # fmt: skip
    dr.add_argument("--json", action="store_true", help="print one JSON object")
    dr.set_defaults(func=cmd_doctor)
    return p


# What the working commands import; loaded before they start, with Ctrl-C held
# (pixelzoo.utils.interrupts says why).
LIBRARY = ("pixelzoo.models", "pixelzoo.data", "pixelzoo.runs", "pixelzoo.training",
           "pixelzoo.evaluation", "pixelzoo.sampling", "pixelzoo.report", "pixelzoo.codec")  # fmt: skip
LIGHT_COMMANDS = (cmd_models, cmd_datasets, cmd_settings)  # need the registry only


def main(argv: list[str] | None = None) -> int:
    try:
        from pixelzoo.errors import PixelzooError
        from pixelzoo.utils.interrupts import ctrl_c_held, import_held

        with ctrl_c_held():
            args = build_parser().parse_args(argv)
        for module in () if args.func in LIGHT_COMMANDS else LIBRARY:
            import_held(module)
        try:
            return args.func(args)
        except PixelzooError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (pixelzoo models | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
