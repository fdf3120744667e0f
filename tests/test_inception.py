"""FID's Inception-v3: the architecture's size, loading from a local file, and the errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from pixelzoo.errors import CheckpointError, ConfigError
from pixelzoo.evaluation import feature_metrics
from pixelzoo.evaluation.inception import WEIGHTS_NAME, InceptionV3, load_inception


@pytest.fixture(scope="module")
def weights(inception_weights):
    return inception_weights


def test_the_architecture_has_the_graphs_parameter_count():
    # torchvision's Inception3: 27,161,264 parameters, of which the auxiliary classifier
    # holds 3,326,696; FID's graph has 1008 classes instead of 1000 (+ 8 * 2049).
    assert sum(p.numel() for p in InceptionV3().parameters()) == 27_161_264 - 3_326_696 + 8 * 2049


def test_weights_load_from_a_local_file_and_give_features_and_logits(weights, tmp_path):
    net, path = weights
    loaded = load_inception(path)
    u = torch.rand(2, 1, 8, 8) * 2 - 1  # small grey images are resized and repeated into RGB
    with torch.no_grad():
        f, logits = loaded(u), loaded.logits(u)
        torch.testing.assert_close(f, net(u))
    assert f.shape == (2, 2048) and logits.shape == (2, 1008)
    st = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in torch.load(path, weights_only=True).items()}, st)
    with torch.no_grad():
        torch.testing.assert_close(load_inception(st)(u), f)
    x = torch.randint(0, 4, (4, 3, 16, 16))
    r = feature_metrics(loaded, x, x, 4, batch_size=4, reps=3)
    assert abs(r["fid"].value) < 1e-3


def test_missing_or_wrong_weights_are_one_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv("PIXELZOO_INCEPTION", raising=False)
    with pytest.raises(ConfigError, match=WEIGHTS_NAME):
        load_inception(None)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_inception(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_inception(bad)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(CheckpointError, match="not FID's Inception-v3"):
        load_inception(other)


def _torch_fidelity_inception():
    """torch-fidelity's Inception-v3 module, from the private folder .ci/run fills
    (``$PIXELZOO_TORCH_FIDELITY`` or ``.ci-deps/torch-fidelity``), loaded without the
    package's ``__init__``, which imports torchvision; skip if it is absent."""
    import os
    import sys
    import types
    from pathlib import Path

    root = Path(os.environ.get("PIXELZOO_TORCH_FIDELITY",
                               Path(__file__).resolve().parents[1] / ".ci-deps" / "torch-fidelity"))  # fmt: skip
    if not (root / "torch_fidelity" / "feature_extractor_inceptionv3.py").is_file():
        pytest.skip(f"torch-fidelity is not in {root} (.ci/run puts it there)")
    if "torch_fidelity" not in sys.modules:
        pkg = types.ModuleType("torch_fidelity")
        pkg.__path__ = [str(root / "torch_fidelity")]
        sys.modules["torch_fidelity"] = pkg
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3


def test_the_port_gives_torch_fidelitys_features_and_unbiased_logits(tmp_path):
    """An independent implementation with the same (random) weights: the same 2048 features
    and the same bias-free logits, to 1e-5, on 299x299 inputs (no resize in either)."""
    extractor = _torch_fidelity_inception()
    torch.manual_seed(0)
    ours = InceptionV3().eval()
    with torch.no_grad():  # batch-norm statistics away from the identity, so they are tested
        for m in ours.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    torch.save(ours.state_dict(), tmp_path / "w.pth")
    theirs = extractor("inception-v3-compat", ["2048", "logits_unbiased"],
                       feature_extractor_weights_path=str(tmp_path / "w.pth"),
                       feature_extractor_internal_dtype="float64").eval()  # fmt: skip
    x = torch.randint(0, 256, (2, 3, 299, 299), generator=torch.Generator().manual_seed(1),
                      dtype=torch.uint8)  # fmt: skip
    with torch.no_grad():
        features, logits = theirs(x)
        # torch-fidelity scales by (x - 128) / 128; the networks are compared on one input.
        mine = ours.double()((x.double() - 128) / 128)
        torch.testing.assert_close(mine.float(), features, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.classify(mine).float(), logits, atol=1e-5, rtol=1e-5)
