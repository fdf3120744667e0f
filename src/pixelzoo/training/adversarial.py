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
"""

from __future__ import annotations

import torch

from pixelzoo.errors import ConfigError
from pixelzoo.training.trainer import Trainer


class AdversarialTrainer(Trainer):
    """Train a :class:`~pixelzoo.models.adversarial.AdversarialModel` (see the module docstring)."""

    compiles = False  # its generator and discriminator steps are its own: eager

    def __init__(self, *args, **kwargs):
        self._phase = None
        super().__init__(*args, **kwargs)
        self.on_step_change()  # a fresh run starts at the schedule's step 0

    def check_supported(self) -> None:
        if self.dist.enabled:
            raise ConfigError(
                "adversarial models train in a single process for now; run without torchrun"
            )
        if self.cfg.micro_batch:
            raise ConfigError("micro_batch applies to likelihood models; GANs take whole batches")

    def make_optimizers(self):
        return {
            "generator": self._adam(self.model.generator.parameters()),
            "discriminator": self._adam(self.model.discriminator.parameters()),
        }

    def _autocast(self):
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.amp)

    def update(self, batch) -> dict[str, float]:
        model = self.model
        x = batch[0] if isinstance(batch, tuple) else batch
        with self._autocast():
            d_loss, d_stats = model.discriminator_loss(x)
        d_loss.backward()
        d_loss_v, d_norm = self.apply_gradients(
            self.optimizers["discriminator"], d_loss, "discriminator loss"
        )
        model.discriminator.requires_grad_(False)
        try:
            with self._autocast():
                g_loss, g_stats = model.generator_loss(len(x))
            g_loss.backward()
        finally:
            model.discriminator.requires_grad_(True)
        g_loss_v, g_norm = self.apply_gradients(
            self.optimizers["generator"], g_loss, "generator loss"
        )
        scalars = {
            "d_loss": d_loss_v,
            "g_loss": g_loss_v,
            "d_grad_norm": d_norm,
            "g_grad_norm": g_norm,
        }
        scalars.update({k: float(v) for k, v in {**d_stats, **g_stats}.items()})
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
