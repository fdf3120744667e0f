"""CUDA checks (``pytest -m gpu`` on a machine with a GPU; skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

from pixelzoo import models
from pixelzoo.training import TrainConfig, load_model, train
from tests.helpers import torchrun

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_log_prob_and_samples_match_cpu():
    torch.manual_seed(0)
    model = models.build("pixelcnn", (3, 6, 6), 256, hidden=12, blocks=2, out_hidden=24).eval()
    x = torch.randint(0, 256, (4, 3, 6, 6))
    cpu = model.log_prob(x)
    gpu = model.cuda().log_prob(x.cuda()).cpu()
    torch.testing.assert_close(cpu, gpu, atol=1e-3, rtol=1e-5)
    binary = models.build("pixelcnn", (1, 6, 6), 2, hidden=8, blocks=2, out_hidden=16).eval()
    a = binary.sample(8, generator=torch.Generator().manual_seed(1))
    b = binary.cuda().sample(8, generator=torch.Generator().manual_seed(1)).cpu()
    assert torch.equal(a, b)  # uniforms come from the CPU generator on both devices


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])  # float16: with its loss scale
def test_cuda_training_with_autocast_and_resume(tmp_path, dtype):
    kw = dict(
        overrides={"hidden": 8, "blocks": 2, "out_hidden": 16},
        device="cuda",
        amp_dtype=dtype,
        batch_size=32,
        samples=4,
        log_every=1,
        ckpt_every=5,
    )
    train(TrainConfig(steps=20, **kw), tmp_path / "full", progress=False)
    train(TrainConfig(steps=10, **kw), tmp_path / "split", progress=False)
    train(TrainConfig(steps=20), tmp_path / "split", resume=True, progress=False)
    a, b = load_model(tmp_path / "full", "last"), load_model(tmp_path / "split", "last")
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], atol=1e-5, rtol=1e-4)


def test_cuda_class_conditional_gated_pixelcnn_matches_cpu(tmp_path):
    """Labels given on the CPU reach the CUDA model; training with --cond class runs on CUDA."""
    torch.manual_seed(0)
    model = models.build("gated_pixelcnn", (1, 6, 6), 2, hidden=8, layers=2, num_classes=3).eval()
    y = torch.tensor([0, 1, 2, 1])
    x = torch.randint(0, 2, (4, 1, 6, 6))
    cpu = model.log_prob(x, y)
    a = model.sample(4, y, generator=torch.Generator().manual_seed(1))
    model = model.cuda()
    torch.testing.assert_close(cpu, model.log_prob(x.cuda(), y.cuda()).cpu(), atol=1e-4, rtol=1e-5)
    assert torch.equal(a, model.sample(4, y, generator=torch.Generator().manual_seed(1)).cpu())
    cfg = TrainConfig(
        model="gated_pixelcnn",
        cond="class",
        overrides={"hidden": 8, "layers": 2},
        device="cuda",
        amp=True,
        micro_batch=16,
        steps=5,
        samples=10,
    )
    train(cfg, tmp_path / "run", progress=False)
    assert list((tmp_path / "run" / "samples").glob("*.png"))


def test_evaluator_and_compare_run_on_cuda(tmp_path):
    """train-evaluator and compare on the GPU give the CPU's figures (to float rounding)."""
    from pixelzoo.report import MeasureConfig, compare
    from pixelzoo.training import EvaluatorTraining, train_evaluator

    train(TrainConfig(data="digits", steps=20, overrides={"blocks": 1}, samples=0), tmp_path / "r",
          progress=False)  # fmt: skip
    train_evaluator(EvaluatorTraining(epochs=2, device="cuda"), tmp_path / "ev", progress=False)
    figures = {}
    for device in ("cpu", "cuda"):
        cfg = MeasureConfig(samples=64, ais=False, bootstrap=20, device=device, naive_timing=False)
        rec = compare([tmp_path / "r"], tmp_path / device, evaluator_dir=tmp_path / "ev", cfg=cfg,
                      progress=False)["records"][1]  # fmt: skip
        figures[device] = rec
    assert figures["cuda"]["nats"] == pytest.approx(figures["cpu"]["nats"], rel=1e-4)
    assert figures["cuda"]["fid"] == pytest.approx(figures["cpu"]["fid"], rel=1e-2, abs=1e-3)


def test_cuda_compression_round_trip_and_the_device_is_checked():
    from pixelzoo import codec

    torch.manual_seed(0)
    model = models.build("pixelcnn_pp", (3, 6, 6), 256, "tiny").eval().cuda()
    x = torch.randint(0, 256, (5, 3, 6, 6))
    data = codec.encode(model, x, batch=2).data
    y, _ = codec.decode(model, data)
    assert torch.equal(y, x)
    with pytest.raises(codec.CodecError, match="encoded on cuda"):
        codec.decode(model.cpu(), data)


def test_a_gan_trains_under_torchrun_on_cuda_with_synchronised_batch_norm(tmp_path):
    """NCCL, one process a GPU (device auto: cuda:LOCAL_RANK); batch norm becomes SyncBatchNorm."""
    n = min(torch.cuda.device_count(), 2)
    args = ["train", "--model", "dcgan", "--preset", "digits", "--data", "digits"]
    args += ["--steps", "6", "--batch-size", "16", "--device", "auto", "--no-progress"]
    out = torchrun(*args, "--out", tmp_path / "run", processes=n)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SyncBatchNorm" not in out.stderr  # no warning: synchronised
    model = load_model(tmp_path / "run", "last")  # the checkpoint loads into plain BatchNorm
    assert isinstance(model, models.get("dcgan").cls)
