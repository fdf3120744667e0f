"""Adversarial training: the :class:`~pixelzoo.training.trainer.Trainer` with a GAN's update.

Everything but the update is the likelihood trainer's: the same data order,
checkpoints, exact resume, logs, sample grids and NaN handling. Per step:

1. the discriminator takes one Adam step on its loss for the real batch and as
   many fakes (``n_critic = 1``, as in DCGAN and Karras et al. 2018);
2. the generator takes one Adam step on its loss for a fresh batch of fakes, with
   the discriminator's weights frozen.

Each network has its own Adam (saved as ``optim.generator.*`` and
``optim.discriminator.*``); ``ema`` averages the generator only. A model with a
growth schedule (Progressive GAN) is told the number of real images shown so far
after every step and on resume, so its resolution and fade-in alpha are functions
of the step and a resumed run continues exactly where it stopped, mid-fade-in
included. Logged per window: both losses, both gradient norms, the mean scores of
real and fake images (and the gradient penalty for WGAN-GP).

Under torchrun each process takes every world-th image of the global batch and the
matching rows of the step's latents (``AdversarialModel.shared``), and each network's
gradients are averaged over the processes after its backward
(``distributed.average_gradients``, one ``all_reduce``) rather than by
DistributedDataParallel: DDP's reducer expects one backward over the wrapped module per
forward, where a GAN step runs two (each with the other network frozen or unused), and
it reduces wrong gradients when the loss holds a ``torch.autograd.grad`` term, as
WGAN-GP's penalty does (pytorch/pytorch#47562). N processes, which start from rank 0's
weights, then take one process's steps (tested with gloo), up to statistics taken within
a process's share of the batch: batch norm (DCGAN) on the CPU, where PyTorch's
SyncBatchNorm does not run (on GPUs it replaces every BatchNorm), and the Progressive
GAN's minibatch standard deviation when the processes do not divide the global batch
over the group size.
"""

from __future__ import annotations

import warnings

from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.training import distributed
from pixelzoo.training.trainer import Trainer


class AdversarialTrainer(Trainer):
    """Train a :class:`~pixelzoo.models.adversarial.AdversarialModel` (see the module docstring)."""

    compiles = False  # its generator and discriminator steps are its own: eager

    def __init__(self, *args, **kwargs):
        self._phase = None
        super().__init__(*args, **kwargs)
        self.on_step_change()  # a fresh run starts at the schedule's step 0

    def check_supported(self) -> None:
        if self.cfg.micro_batch:
            raise ConfigError("micro_batch applies to likelihood models; GANs take whole batches")

    def distribute(self, objective: nn.Module) -> nn.Module:
        """Under torchrun: no DDP wrapper (see the module docstring); the model learns its
        share of each batch, and batch norm is synchronised where PyTorch can."""
        model = self.model
        model.share = (self.dist.rank, self.dist.world_size)
        distributed.broadcast_from_main(model, self.dist)  # as DDP's wrapper would
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if has_bn and self.device.startswith("cuda"):
            model.generator = nn.SyncBatchNorm.convert_sync_batchnorm(model.generator)
            model.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(model.discriminator)
        elif has_bn and self.dist.is_main:
            warnings.warn(
                f"{model.registry_name} has batch norm, whose statistics are each process's "
                f"on the CPU (PyTorch's SyncBatchNorm needs GPUs): {self.dist.world_size} "
                "processes train close to, not exactly as, one process (batch_norm=false "
                "makes them equal)",
                stacklevel=2,
            )
        return objective

    def make_optimizers(self):
        return {
            "generator": self._adam(self.model.generator.parameters()),
            "discriminator": self._adam(self.model.discriminator.parameters()),
        }

    def update(self, batch) -> dict[str, float]:
        model = self.model
        x = batch[0] if isinstance(batch, tuple) else batch
        with self.autocast():
            d_loss, d_stats = model.discriminator_loss(x)
        self.scaler.scale(d_loss).backward()
        distributed.average_gradients(model.discriminator.parameters(), self.dist)
        d_loss_v, d_norm = self.apply_gradients(
            self.optimizers["discriminator"], d_loss, "discriminator loss"
        )
        model.discriminator.requires_grad_(False)
        try:
            with self.autocast():
                g_loss, g_stats = model.generator_loss(len(x))
            self.scaler.scale(g_loss).backward()
        finally:
            model.discriminator.requires_grad_(True)
        distributed.average_gradients(model.generator.parameters(), self.dist)
        g_loss_v, g_norm = self.apply_gradients(
            self.optimizers["generator"], g_loss, "generator loss"
        )
        scalars = {
            "d_loss": d_loss_v,
            "g_loss": g_loss_v,
            "d_grad_norm": d_norm,
            "g_grad_norm": g_norm,
        }
        stats = {k: float(v) for k, v in {**d_stats, **g_stats}.items()}
        scalars.update(distributed.all_mean(stats, self.dist, self.device))
        return scalars

    def on_step_change(self) -> None:
        """Tell the model (and its average) how many real images it has seen; new phase -> fresh Adam."""
        images = self.step * self.cfg.batch_size
        for m in (self.model, self.ema):
            if m is not None:
                m.set_images_seen(images)
        phase = self.model.progress_state().get("phase")
        if (
            phase is not None
            and self._phase is not None
            and phase != self._phase
            and getattr(self.model.config, "reset_optimizer", False)
        ):
            for opt in self.optimizers.values():
                opt.state.clear()  # as the reference does when a new phase starts
        self._phase = phase

    def progress_state(self) -> dict:
        return self.model.progress_state()

    def postfix(self, record: dict) -> dict:
        out = {"d": f"{record['d_loss']:.3f}", "g": f"{record['g_loss']:.3f}"}
        if "alpha" in record:
            out["res"] = record["resolution"]
            out["alpha"] = f"{record['alpha']:.2f}"
        return {**out, **self.time_postfix(record)}
