"""``compile``: the training step under torch.compile is the eager step, resumes exactly,
is chosen only when it pays, and falls back to eager when it cannot be built."""

from __future__ import annotations

import json

import pytest
import torch

from pixelzoo import models
from pixelzoo.runs import read_metrics
from pixelzoo.training import TrainConfig, compiling, load_model, train
from pixelzoo.training.trainer import Objective
from tests.helpers import losses, small_cfg


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()  # no compiled code carried from one test into another
    yield
    torch._dynamo.reset()


def graphs() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_the_automatic_choice_waits_for_timed_steps_and_a_compiler(monkeypatch):
    assert compiling.choose_compile(True, "cpu", None) == (True, "set")
    assert compiling.choose_compile(False, "cpu", 1e9) == (False, "set")
    on, why = compiling.choose_compile(None, "cpu", None)
    assert on is None and "until the first steps are timed" in why
    assert compiling.choose_compile(None, "cpu", compiling.WORTH_SECONDS)[0] is True
    on, why = compiling.choose_compile(None, "cpu", compiling.WORTH_SECONDS - 1)
    assert on is False and "minutes of eager steps left" in why
    on, why = compiling.choose_compile(None, "cpu", 1e9, distributed=True)
    assert on is False and "DDP" in why
    # No compiler on PATH: the automatic choice says so; an explicit one is kept.
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    on, why = compiling.choose_compile(None, "cpu", 1e9)
    assert on is False and "no C++ compiler" in why
    assert compiling.choose_compile(True, "cpu", None) == (True, "set")


def test_a_compiled_step_is_the_eager_step(tmp_path):
    # float32, so the two differ only by the order of the fused arithmetic
    before = graphs()
    train(small_cfg(steps=4, amp=False, compile=True), tmp_path / "compiled", progress=False)
    assert graphs() > before  # it did compile
    train(small_cfg(steps=4, amp=False, compile=False), tmp_path / "eager", progress=False)
    (a, b) = (losses(tmp_path / d) for d in ("compiled", "eager"))
    assert [s for s, _ in a] == [s for s, _ in b] == [1, 2, 3, 4]
    assert [v for _, v in a] == pytest.approx([v for _, v in b], rel=1e-5)
    wa, wb = (load_model(tmp_path / d).state_dict() for d in ("compiled", "eager"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)
    chosen = json.loads((tmp_path / "compiled" / "config.json").read_text())["chosen"]
    assert chosen["compile"] is True and chosen["compile_reason"] == "set"


def test_the_automatic_choice_is_made_at_step_6_and_resumes_exactly(tmp_path, monkeypatch):
    # Every run "pays" here; the split run stops before the decision (step 4) and after
    # it (step 8): the resumed runs decide at the same step, then keep what was decided.
    monkeypatch.setattr(compiling, "WORTH_SECONDS", 0.0)
    before = graphs()
    train(small_cfg(steps=12), tmp_path / "full", progress=False)
    assert graphs() > before
    train(small_cfg(steps=4), tmp_path / "split", progress=False)
    for steps in (8, 12):
        train(TrainConfig(steps=steps), tmp_path / "split", resume=True, progress=False)
    assert losses(tmp_path / "full") == losses(tmp_path / "split")
    full, split = (load_model(tmp_path / d).state_dict() for d in ("full", "split"))
    for k, v in full.items():
        assert torch.equal(v, split[k]), k
    for run in ("full", "split"):
        records = read_metrics(tmp_path / run)
        assert [(r["step"], r["compile"]) for r in records if r["split"] == "compile"] == [
            (6, True)
        ]
        chosen = json.loads((tmp_path / run / "config.json").read_text())["chosen"]
        assert (
            chosen["compile"] is True and "minutes of eager steps left" in chosen["compile_reason"]
        )
    setups = [r for r in read_metrics(tmp_path / "split") if r["split"] == "setup"]
    assert [r["compile"] for r in setups] == [None, None, True]  # the third start kept it
    assert setups[-1]["compile_reason"].startswith("kept: default: about")


def test_a_compiler_that_cannot_build_the_step_leaves_the_run_eager(tmp_path):
    # torch's own config patching: monkeypatch's undo of the autograd-cache flag left
    # torch._functorch.config unreadable, and every later compile in the process failed.
    no_compiler = torch._inductor.config.patch(
        {"cpp.cxx": ("/nonexistent/g++",), "fx_graph_cache": False}
    )
    with no_compiler, torch._functorch.config.patch(enable_autograd_cache=False):
        with pytest.warns(UserWarning, match="torch.compile could not build the training step"):
            train(small_cfg(steps=3, compile=True), tmp_path / "failed", progress=False)
    train(small_cfg(steps=3, compile=False), tmp_path / "eager", progress=False)
    assert losses(tmp_path / "failed") == losses(tmp_path / "eager")
    chosen = json.loads((tmp_path / "failed" / "config.json").read_text())["chosen"]
    assert chosen["compile"] is False
    assert chosen["compile_reason"].startswith("compiling failed at step 0 (")


@pytest.mark.parametrize(
    "name", ["pixelcnn", "gated_pixelcnn", "pixelcnn_pp", "row_lstm", "diagonal_bilstm", "vae"]
)
def test_every_likelihood_family_traces_into_one_graph_after_its_input_check(name):
    # Dynamo alone (no kernels built): a graph break inside the loss would split the
    # compiled step and print a warning to the user. The input check, which reads
    # values, runs eagerly by design, ahead of the one graph.
    model = models.build(name, (3, 8, 8), 256, "tiny").train()
    x = torch.randint(0, 256, (4, 3, 8, 8))
    explained = torch._dynamo.explain(Objective(model))(x)
    assert explained.break_reasons == []
    assert explained.graph_count <= 2  # what the check leaves before it, and the loss


def test_tanh_is_torchs_eagerly_and_two_sigmoids_in_a_compiled_graph():
    from pixelzoo.nn.activations import tanh

    x = torch.linspace(-30, 30, 20001, requires_grad=True)
    assert torch.equal(tanh(x), torch.tanh(x))  # eagerly: torch's own kernel
    traced = []

    def backend(gm, example_inputs):  # sees the graph Dynamo traced, then runs it
        traced.append(gm.code)
        return gm.forward

    got = torch.compile(tanh, backend=backend)(x)
    assert "sigmoid" in traced[0] and "tanh" not in traced[0]
    torch.testing.assert_close(got, torch.tanh(x), rtol=0, atol=5e-7)
    (grad,) = torch.autograd.grad(got.sum(), x)
    torch.testing.assert_close(grad, 1 - torch.tanh(x.detach()) ** 2, rtol=0, atol=2e-6)


def test_a_compiled_gated_pixelcnn_loss_and_gradients_are_the_eager_ones():
    # The Gated PixelCNN's compiled graph differs most from its eager code: the
    # sigmoid-form tanh, the link's shifted output. float32, so only rounding differs.
    torch.manual_seed(0)
    model = models.build("gated_pixelcnn", (3, 8, 8), 256, "tiny").train()
    x = torch.randint(0, 256, (4, 3, 8, 8))
    objective = Objective(model)
    eager = objective(x)
    want = torch.autograd.grad(eager, list(model.parameters()))
    compiled = compiling.compiled(objective)(x)
    got = torch.autograd.grad(compiled, list(model.parameters()))
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=0)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
