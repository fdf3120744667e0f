"""The run layer loses nothing: the folder lock, pointers reconciled from the checkpoints'
metadata, failed writes (disk full, read-only), settings changed on resume, malformed
run files, and a fresh run that fails early leaving nothing behind.

Faults that are processes are real processes (two trainers, SIGINT at start-up);
a trainer SIGKILLs itself at every write step of a checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch

from pixelzoo.errors import CheckpointError, ConfigError, RunLocked, TrainingDiverged, WriteError
from pixelzoo.runs import Checkpoints, Run, RunLock, read_metrics
from pixelzoo.runs import checkpoint as ckpt_module
from pixelzoo.training import TrainConfig, load_model, train
from tests.helpers import SMALL_CLI, cli, losses, pz, small_cfg


def cfg(**kw) -> TrainConfig:
    return small_cfg(**{"ckpt_every": 3, **kw})


def start(run, steps: int = 4, ckpt_every: int = 2) -> None:
    """A small run through the CLI, with a checkpoint every ``ckpt_every`` steps."""
    pz("train", "--out", run, "--steps", steps, "--batch-size", 32, *SMALL_CLI,
       "--set", f"ckpt_every={ckpt_every}")  # fmt: skip


def one_sentence_error(out, *needles):
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), lines
    assert "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


def same_weights(a, b):
    wa, wb = load_model(a, "last").state_dict(), load_model(b, "last").state_dict()
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 45-step run (two epoch boundaries of the digits at batch 32:
    39 steps an epoch) that every interrupted one must equal. It runs in a process of its
    own, as the killed and the resumed runs do: every one then uses the same threads, so
    their float sums agree bit for bit."""
    run = tmp_path_factory.mktemp("ref") / "run"
    start(run, steps=45, ckpt_every=3)
    return run


# ---------------------------------------------------------------------- the lock
def test_a_second_process_is_refused_while_the_first_trains(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--steps", "100000", "--batch-size", "32", *SMALL_CLI, "--set", "ckpt_every=2"]
    first = subprocess.Popen(
        [sys.executable, "-m", "pixelzoo", *args, "--out", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "last.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first trainer ended early"
        # A resume and a fresh run into the same folder: both refused, naming the holder.
        one_sentence_error(
            pz("train", "--resume", run, "--no-progress", check=False),
            "is in use by another process", f"pid {first.pid}",
        )  # fmt: skip
        one_sentence_error(
            pz("train", "--out", run, *SMALL_CLI, "--steps", "2", check=False),
            "in use by another process",
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The kernel released the lock with the killed process: resuming works at once.
    step = json.loads((run / "checkpoints" / "last.json").read_text())["step"]
    pz("train", "--resume", run, "--steps", str(step + 2), "--no-progress")
    assert Run(run).checkpoints.step("last") == step + 2


def test_lock_names_its_holder_and_is_released(tmp_path):
    lock = RunLock(tmp_path).acquire()
    with pytest.raises(RunLocked, match=rf"pid {os.getpid()} on .*since"):
        train(cfg(steps=2), tmp_path, progress=False)
    assert not (tmp_path / "config.json").exists()  # refused before anything was written
    lock.release()
    train(cfg(steps=2), tmp_path, progress=False)


# ---------------------------------------------------------------------- kills inside a write
WRITE_STEPS = [  # (function used by runs/checkpoint.py, which of its calls in one save)
    ("save_file", 1),  # the model weights
    ("save_file", 2),  # the optimizer state
    ("atomic_write_json", 1),  # meta.json, in the temporary folder
    ("os.replace", 2),  # the temporary folder renamed into place (1 is meta.json's own rename)
    ("atomic_write_json", 2),  # last.json
    ("atomic_write_json", 3),  # best.json
    ("prune", 1),  # removing the checkpoints no pointer needs
]


# A trainer in its own process that SIGKILLs itself at one write of the checkpoint
# written at step 39 (the end of the first epoch: a validation and a new best).
KILLER = """
import os, signal, sys
from pixelzoo.runs import checkpoint as ck
from pixelzoo.training import TrainConfig, train
where, call, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
owner, name = {"os.replace": (ck.os, "replace"), "prune": (ck.Checkpoints, "prune")}.get(
    where, (ck, where))
real, seen = getattr(owner, name), {"n": 0, "armed": False}
save = ck.Checkpoints.save
def arming(self, step, *a, **k):
    seen["armed"] = step == 39
    return save(self, step, *a, **k)
def faulty(*a, **k):
    if seen["armed"]:
        seen["n"] += 1
        if seen["n"] == call:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
ck.Checkpoints.save = arming
setattr(owner, name, faulty)
train(TrainConfig(overrides={"hidden": 8, "blocks": 2, "out_hidden": 16}, batch_size=32,
                  log_every=1, ckpt_every=3, samples=0, steps=45), run, progress=False)
"""


@pytest.mark.parametrize("where,call", WRITE_STEPS, ids=[f"{w}-{c}" for w, c in WRITE_STEPS])
def test_a_kill_at_any_step_of_a_checkpoint_write_resumes_exactly(where, call, reference, tmp_path):
    """SIGKILL at each write of a checkpoint, then a resume: the run equals the
    uninterrupted one, and nothing half-written is left."""
    run = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, where, str(call), str(run)], capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]  # the fault was reached
    pz("train", "--resume", run, "--no-progress")
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    assert losses(run) == losses(reference)
    assert same_weights(run, reference)
    ckpts = Run(run).checkpoints
    assert ckpts.pointer("last")["dir"] == "step-00000045" == ckpts.resolve("last")
    assert ckpts.pointer("best")["dir"] == ckpts.resolve("best")


def test_pointers_follow_the_checkpoints_own_metadata(tmp_path):
    """A kill between the last and best pointer writes at the final step: best.json still
    names an older checkpoint. Readers use the metadata; a resume rewrites the pointer,
    and says the finished run has nothing left to do."""
    run = tmp_path / "run"
    train(cfg(steps=6, ckpt_every=2), run, progress=False)
    ckpts = Run(run).checkpoints
    # Forge the state the kill leaves: an older best checkpoint and its stale pointer.
    assert ckpts.step("best") == 6
    shutil.copytree(run / "checkpoints" / "step-00000006", run / "checkpoints" / "step-00000004")
    meta = json.loads((run / "checkpoints" / "step-00000004" / "meta.json").read_text())
    (run / "checkpoints" / "step-00000004" / "meta.json").write_text(
        json.dumps({**meta, "step": 4})
    )
    (run / "checkpoints" / "best.json").write_text(json.dumps({"dir": "step-00000004", "step": 4}))
    assert Run(run).checkpoints.step("best") == 6  # the metadata decide, not the stale pointer
    out = pz("train", "--resume", run, "--no-progress")
    assert "had already finished at step 6" in out.stdout and "GAN" not in out.stdout
    assert json.loads((run / "checkpoints" / "best.json").read_text())["dir"] == "step-00000006"


# ---------------------------------------------------------------------- failed writes
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_failed_checkpoint_write_is_one_sentence_and_keeps_the_last_good_one(
    code, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    train(cfg(steps=3), run, progress=False)
    real = ckpt_module.save_file
    monkeypatch.setattr(
        ckpt_module,
        "save_file",
        lambda *a, **k: (_ for _ in ()).throw(OSError(code, os.strerror(code))),
    )
    with pytest.raises(
        WriteError, match=rf"{os.strerror(code)}.*last good checkpoint, step 3, is intact"
    ):
        train(cfg(steps=6), run, resume=True, progress=False)
    monkeypatch.setattr(ckpt_module, "save_file", real)
    names = [p.name for p in (run / "checkpoints").iterdir()]
    assert not [n for n in names if n.startswith(".tmp-")], names
    assert Run(run).checkpoints.step("last") == 3
    load_model(run)  # intact


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True)  # fmt: skip
    return out.returncode == 0


def test_a_full_filesystem_then_freed_space(reference, tmp_path):
    """A real full disk (a small tmpfs): one sentence, nothing half-written; after space is
    freed the run resumes and equals the uninterrupted one."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "4M"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        run = disk / "run"
        start(run, steps=3, ckpt_every=3)
        filler = disk / "filler"
        with open(filler, "wb") as f:  # fill the disk, then give back a little
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        with open(filler, "r+b") as f:
            f.truncate(max(0, os.path.getsize(filler) - 24 * 1024))
        out = pz("train", "--resume", run, "--steps", "12", "--no-progress", check=False)
        one_sentence_error(out, "No space left on device")
        assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
        filler.unlink()
        pz("train", "--resume", run, "--steps", "12", "--no-progress")
        assert losses(run) == losses(reference)[:12]  # as if the disk had never been full
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_checkpoint_files_have_the_usual_permissions(tmp_path):
    train(cfg(steps=3), tmp_path / "run", progress=False)
    mask = os.umask(0)
    os.umask(mask)
    for f in (tmp_path / "run" / "checkpoints" / "step-00000003").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f


# ---------------------------------------------------------------------- resume settings
def test_resume_refuses_what_defines_the_run_and_records_what_it_changes(tmp_path):
    run = tmp_path / "run"
    start(run)
    before = (run / "config.json").read_text()
    for args, what in [
        (("--model", "row_lstm"), "model"),
        (("--data", "mnist"), "data"),
        (("--seed", "3"), "seed"),
        (("--batch-size", "16"), "batch_size"),
        (("--set", "blocks=3"), "model settings"),
    ]:
        out = cli("train", "--resume", run, *args, "--no-progress", check=False)
        one_sentence_error(out, f"a resumed run keeps its {what}")
        assert (run / "config.json").read_text() == before
    pz(
        "train",
        "--resume",
        run,
        "--steps",
        "6",
        "--lr",
        "5e-4",
        "--set",
        "log_every=2",
        "--no-progress",
    )
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["lr"] == 5e-4 and saved["train"]["steps"] == 6
    change = saved["changes"][-1]
    assert change["step"] == 4 and change["settings"]["lr"] == {"from": 1e-3, "to": 5e-4}
    rec = [r for r in read_metrics(run) if r["split"] == "resume"]
    assert rec and rec[-1]["step"] == 4 and rec[-1]["changed"]["log_every"]["to"] == 2
    lr = {r["step"]: r["lr"] for r in read_metrics(run) if r["split"] == "train"}
    assert lr[4] == pytest.approx(1e-3) and lr[6] == pytest.approx(5e-4)


def test_the_advice_after_a_divergence_works(tmp_path):
    """Diverged at a too-high lr: the message says resume with a lower --lr; doing so trains on."""
    run = tmp_path / "run"
    start(run)
    out = pz("train", "--resume", run, "--steps", "40", "--lr", "1e30", "--set", "grad_clip=0",
             "--no-progress", check=False)  # fmt: skip
    one_sentence_error(out, "last good checkpoint (step", "resume it with a lower --lr")
    kept = Run(run).checkpoints.step("last")
    pz("train", "--resume", run, "--steps", "12", "--lr", "1e-3", "--no-progress")
    assert Run(run).checkpoints.step("last") == 12 > kept
    assert all(v == v and v < 10 for _, v in losses(run))  # finite, sensible losses


def test_divergence_before_the_first_checkpoint_leaves_nothing(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="before the first checkpoint.*start again"):
        train(cfg(steps=30, ckpt_every=100, lr=1e30, grad_clip=0.0), run, progress=False)
    assert not run.exists()
    train(cfg(steps=2), run, progress=False)  # the same folder, at once


# ---------------------------------------------------------------------- malformed run files
@pytest.mark.parametrize(
    "name,content",
    [("last.json", "{}"), ("last.json", "5"), ("last.json", b"\xff\xfe\x00"), ("last.json", None),
     ("best.json", '{"dir": "../../elsewhere"}'), ("best.json", '{"dir": "/etc"}')],
    ids=["empty-object", "number", "not-utf8", "a-folder", "dotdot", "absolute"],
)  # fmt: skip
def test_malformed_pointers_never_decide_what_loads(name, content, tmp_path):
    run = tmp_path / "run"
    train(cfg(steps=3), run, progress=False)
    path = run / "checkpoints" / name
    path.unlink()
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CheckpointError):
        Checkpoints(run / "checkpoints").pointer(name[:-5])
    # The checkpoints' own metadata decide: evaluate works, and a resume repairs the pointer.
    cli("evaluate", run, "--json")
    if content is None:
        path.rmdir()
    cli("train", "--resume", run, "--steps", "4", "--no-progress")
    ckpts = Run(run).checkpoints
    assert ckpts.pointer(name[:-5])["dir"] == ckpts.resolve(name[:-5])
    assert ckpts.resolve("last") == "step-00000004"


def test_malformed_checkpoint_metadata_and_configs_are_one_sentence(tmp_path):
    run = tmp_path / "run"
    train(cfg(steps=3), run, progress=False)
    meta_path = run / "checkpoints" / "step-00000003" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
    one_sentence_error(cli("evaluate", run, check=False), "no SHA-256")
    meta_path.write_text(json.dumps(meta))
    config = json.loads((run / "config.json").read_text())
    for broken, needle in [
        ({k: v for k, v in config.items() if k != "model"}, "no 'model' spec"),
        ({**config, "train": {**config["train"], "batch_size": "many"}}, "train.batch_size"),
        ({**config, "model": {**config["model"], "levels": 1}}, "'levels'"),
        ({**config, "model": {**config["model"], "image_shape": [1, 8]}}, "image_shape"),
        ([1, 2], "not a JSON object"),
    ]:
        (run / "config.json").write_text(json.dumps(broken))
        one_sentence_error(cli("evaluate", run, check=False), needle)
        one_sentence_error(cli("train", "--resume", run, check=False), needle)


def test_prune_removes_only_what_this_run_wrote(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(cfg(steps=3), a, progress=False)
    train(cfg(steps=3), b, progress=False)
    # Another run's checkpoint put into b's folder, and a symlink to a's checkpoint.
    shutil.copytree(a / "checkpoints" / "step-00000003", b / "checkpoints" / "step-00000001")
    meta = json.loads((b / "checkpoints" / "step-00000001" / "meta.json").read_text())
    (b / "checkpoints" / "step-00000001" / "meta.json").write_text(json.dumps({**meta, "step": 1}))
    (b / "checkpoints" / "step-00000002").symlink_to(a / "checkpoints" / "step-00000003")
    train(TrainConfig(steps=6), b, resume=True, progress=False)
    assert (b / "checkpoints" / "step-00000001").is_dir()  # not b's: kept
    assert (b / "checkpoints" / "step-00000002").is_symlink()
    assert (a / "checkpoints" / "step-00000003" / "model.safetensors").is_file()


# ---------------------------------------------------------------------- failing early
def test_a_refused_setting_is_refused_before_anything_is_written(tmp_path):
    """A GAN with micro_batch: refused by its trainer before config.json is written, so
    the folder takes a good run at once (it used to say 'already holds a run')."""
    run = tmp_path / "gan"
    with pytest.raises(ConfigError, match="micro_batch applies to likelihood models"):
        train(TrainConfig(model="dcgan", steps=2, micro_batch=8, samples=0), run, progress=False)
    assert not run.exists()
    train(TrainConfig(model="dcgan", steps=2, samples=0), run, progress=False)


def test_an_error_after_start_up_leaves_nothing_behind(tmp_path, monkeypatch):
    from pixelzoo.training import trainer as trainer_module

    run = tmp_path / "run"
    real = trainer_module.Trainer.train_step

    def fails(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", fails)
    with pytest.raises(KeyboardInterrupt):
        train(cfg(steps=10, ckpt_every=100), run, progress=False)
    assert not run.exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt):
        train(cfg(steps=10, ckpt_every=100), existing, progress=False)
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]  # only what was there


def test_ctrl_c_during_start_up_is_one_line_and_leaves_nothing(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixelzoo", "train", "--out", str(run), *SMALL_CLI],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # importing torch and the models
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
    assert not run.exists()


def test_ctrl_c_held_during_imports_is_raised_after_the_block():
    # Ctrl-C inside torch's C++ import code can abort or kill the process (utils/interrupts.py):
    # the signal must not interrupt the block, and must come out as a KeyboardInterrupt after it.
    from pixelzoo.utils.interrupts import ctrl_c_held

    finished = False
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, in the main thread
            finished = True
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with ctrl_c_held():  # no signal: nothing raised
        pass


def test_tensorboard_gets_the_sample_grids_and_the_hyper_parameters(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg = TrainConfig(model="pixelcnn", data="digits", steps=6, overrides={"blocks": 1},
                      samples=4, log_every=3, lr_decay=0.99)  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"images": 0})
    events.Reload()
    grids = events.Images("samples")
    assert grids and grids[-1].step == 6  # the end-of-training grid
    assert grids[-1].width > 0 and grids[-1].encoded_image_string.startswith(b"\x89PNG")
    assert "train/loss" in events.Tags()["scalars"] and "valid/nats" in events.Tags()["scalars"]
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["model.name"].string_value == "pixelcnn"
    assert hp["model.config.blocks"].number_value == 1
    assert hp["train.lr_decay"].number_value == pytest.approx(0.99)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert {m.name.tag for m in experiment.experiment.metric_infos} >= {"valid/nats"}


def _wandb_records(path) -> list:
    """The records of a W&B run file (``run-ID.wandb``): a 7-byte header, then LevelDB's
    log format (32 KiB blocks of ``crc32c, length, type`` chunks) of protobuf records."""
    from wandb.proto import wandb_internal_pb2

    data, pos, out, part = path.read_bytes(), 7, [], b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        n, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + n], pos + 7 + n
        part = chunk if kind in (1, 2) else part + chunk  # full/first start, middle/last add
        if kind in (1, 4):
            out.append(wandb_internal_pb2.Record.FromString(part))
    return out


def test_wandb_gets_the_scalars_the_sample_grids_and_the_settings(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")  # the real library, writing its local run file
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = TrainConfig(model="pixelcnn", data="digits", steps=6, overrides={"blocks": 1},
                      samples=4, log_every=3, lr_decay=0.99, logger="wandb")  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    (path,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    records = _wandb_records(path)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.run_id == Run(tmp_path / "run").run_id and run.display_name == "run"
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["model.name"] == "pixelcnn" and config["model.config.blocks"] == 1
    assert config["train.lr_decay"] == pytest.approx(0.99)
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            items = {
                i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item
            }
            history.setdefault(items["_step"], {}).update(items)
    assert "train/loss" in history[3] and "train/loss" in history[6]
    assert "valid/nats" in history[6] and history[6]["samples/_type"] == "image-file"
    assert (path.parent / "files" / history[6]["samples/path"]).stat().st_size > 0
    # Without the package: one sentence, before the run writes anything.
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match="logger=wandb needs the wandb package: pip install"):
        train(cfg, tmp_path / "without", progress=False)
    assert not (tmp_path / "without").exists()
