"""``channels_last``: the weights and batches in channels_last memory format train the
same network as the default layout, resume exactly, save loadable checkpoints, and
sample the same images; the setting is in effect (the weights really change layout)."""

from __future__ import annotations

import pytest
import torch

from pixelzoo import models
from pixelzoo.training import TrainConfig, load_model, train, trainer
from tests.helpers import losses, small_cfg

# Every family whose 4-d weights a layout change touches, at its tiny preset. (On these
# one-channel images the tiny Diagonal BiLSTM has no 4-d weight that the two layouts
# store differently, so the setting changes nothing there.)
FAMILIES = ("pixelcnn", "gated_pixelcnn", "row_lstm", "pixelcnn_pp")


@pytest.fixture
def layouts(monkeypatch):
    """Records, at every training step, whether some 4-d weight is not in the default
    (contiguous) layout: what channels_last makes it, and only it."""
    seen: list[bool] = []
    forward = trainer.Objective.forward

    def spy(self, batch):
        seen.append(any(p.dim() == 4 and not p.is_contiguous() for p in self.parameters()))
        return forward(self, batch)

    monkeypatch.setattr(trainer.Objective, "forward", spy)
    return seen


@pytest.mark.parametrize("model", FAMILIES)
def test_channels_last_trains_the_same_network(model, tmp_path, layouts):
    # float32: the two layouts differ only by the order of the convolutions' sums
    run = lambda name, on: train(  # noqa: E731
        small_cfg(model=model, preset="tiny", overrides={}, steps=4, amp=False, channels_last=on),
        tmp_path / name,
        progress=False,
    )
    run("last", True)
    assert layouts and all(layouts), "the setting left the weights in the default layout"
    layouts.clear()
    run("default", False)
    assert layouts and not any(layouts)
    a, b = losses(tmp_path / "last"), losses(tmp_path / "default")
    assert [s for s, _ in a] == [s for s, _ in b] == [1, 2, 3, 4]
    assert [v for _, v in a] == pytest.approx([v for _, v in b], rel=1e-5)
    wa, wb = (load_model(tmp_path / d).state_dict() for d in ("last", "default"))
    assert wa.keys() == wb.keys()
    for k in wa:  # the checkpoint holds ordinary (contiguous) tensors
        assert wa[k].is_contiguous(), k
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def test_channels_last_resumes_exactly(tmp_path):
    cfg = lambda **kw: small_cfg(amp=False, channels_last=True, **kw)  # noqa: E731
    train(cfg(steps=12), tmp_path / "full", progress=False)
    train(cfg(steps=7), tmp_path / "split", progress=False)
    train(TrainConfig(steps=12), tmp_path / "split", resume=True, progress=False)
    assert losses(tmp_path / "full") == losses(tmp_path / "split")
    full, split = (load_model(tmp_path / d).state_dict() for d in ("full", "split"))
    for k, v in full.items():
        assert torch.equal(v, split[k]), k


@pytest.mark.parametrize("model", FAMILIES)
def test_a_channels_last_model_samples_the_same_images(model):
    """The cached steppers copy the weights they read into their own matrices, whatever
    the layout: the same generator draws the same images from both layouts."""
    torch.manual_seed(0)
    net = models.build(model, (1, 4, 4), 4, "tiny").double().eval()
    last = models.build(model, (1, 4, 4), 4, "tiny").double().eval()
    last.load_state_dict(net.state_dict())
    last.to(memory_format=torch.channels_last)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in last.parameters())
    draw = lambda m: m.sample(6, None, torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.equal(draw(net), draw(last))
    assert draw(net).float().std() > 0, "degenerate samples test nothing"
