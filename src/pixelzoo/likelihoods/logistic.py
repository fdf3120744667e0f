"""Discretized logistic mixture likelihood (PixelCNN++, Salimans et al. 2017, §2.1-2.2).

A pixel's sub-pixels are modelled jointly by a mixture of K components. Within
component k each colour channel is a logistic distribution discretized to the
``levels`` values, whose mean depends linearly on the channels before it in the
same pixel (§2.2):

    mu_R = m_R,   mu_G = m_G + alpha * x_R,   mu_B = m_B + beta * x_R + gamma * x_G

with all values on the network's [-1, 1] scale, so level v sits at
``x_v = 2 v / (levels - 1) - 1`` and owns the bin ``[x_v - d, x_v + d]``,
``d = 1 / (levels - 1)``. The lowest bin extends to -inf and the highest to
+inf (§2.1), so every component, and hence the mixture, sums to exactly 1 over
the levels. For C = 1 there are no coefficients; for C = 3 there are three
(alpha, beta, gamma). ``P = K * (1 + 2C + C(C-1)/2)``: 30 for grey, 100 for RGB
with K = 10.

Parameter layout ``[B, P, H, W]``: ``K`` mixture logits, ``C*K`` means, ``C*K``
log-scales, then ``C(C-1)/2 * K`` coefficients (component index fastest).

Log-probabilities are per sub-pixel, as for every pixelzoo likelihood: entry c
of a pixel is ``log p(x_c | x_<c of the pixel, everything before the pixel)``
``= log sum_k p(k | x_<c) p_k(x_c | x_<c)``; they sum to the mixture's
``log p(pixel)``.

Numerics. In units of a component's scale, level v's bin is [b, a] with
``a - b = delta = 2 d / s``, and its mass is
``sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(-delta))``
(multiply out the right-hand side). In log space that is
``log sigmoid(a) + log sigmoid(-b) + log(-expm1(-delta))``: three terms that are
each accurate for any a and b, far in either tail included, where the direct
difference of two CDFs rounds to 0, and with ``delta`` computed without
cancellation. Where ``delta < 1e-6`` (a bin far narrower than the scale) the last
term is ``log(delta)`` to a relative error below 1e-6, so a bin's mass never
underflows to ``log 0``. The edge bins are ``log sigmoid(a)`` (level 0) and
``log sigmoid(-b)`` (the top level): the same formula with ``b = -inf`` or
``a = +inf``.

NOTE: the reference implementation clamps the log-scales at -7 (as here) and uses
the density at the bin centre where ``cdf_delta < 1e-5``; the factorised form
above needs no such approximation.
NOTE: the reference samples G and B with means shifted by the *continuous*
logistic draws of R and G; here the shift uses the quantized values, the ones
the likelihood conditions on, so samples follow exactly the model's distribution.
NOTE: the component is drawn by inverting the mixture's CDF at one uniform (the
reference uses the Gumbel-max trick with K uniforms); the distribution is the
same and every sampler draws ``1 + C`` uniforms per pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pixelzoo.likelihoods.discrete import PixelLikelihood

LOG_SCALE_MIN = -7.0


def _log1mexp(delta: torch.Tensor, log_delta: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-delta))`` for ``delta > 0``; ``log_delta`` where delta < 1e-6."""
    exact = torch.log(-torch.expm1(-delta.clamp(min=1e-6)))
    return torch.where(delta < 1e-6, log_delta, exact)


class DiscretizedLogisticMixture(PixelLikelihood):
    """K-component discretized logistic mixture over the C channels of a pixel.

    Args:
        channels: C (1 or 3; any C works, with C(C-1)/2 coefficients).
        levels: number of values per sub-pixel (256 for 8-bit images, 2 for binary).
        components: K (10 in the paper).
    """

    joint = True

    def __init__(self, channels: int, levels: int, components: int = 10):
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        if components < 1:
            raise ValueError(f"components must be at least 1, got {components}")
        super().__init__(channels, levels)
        self.components = components
        self.num_coeffs = channels * (channels - 1) // 2

    @property
    def num_params(self) -> int:
        return self.components * (1 + 2 * self.channels + self.num_coeffs)

    @property
    def uniforms_per_pixel(self) -> int:
        """One uniform picks the component, one per channel inverts its logistic CDF."""
        return 1 + self.channels

    def split(self, params: torch.Tensor):
        """``[B, P, ...]`` -> logits ``[B, K, ...]``, means and log-scales ``[B, C, K, ...]``,
        coefficients ``[B, C(C-1)/2, K, ...]`` (tanh-squashed into (-1, 1) as the reference)."""
        if params.dtype in (torch.float16, torch.bfloat16):
            params = params.float()
        b, p, *rest = params.shape
        if p != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters per pixel, got {p}")
        k, c = self.components, self.channels
        logits, means, log_scales, coeffs = params.split([k, c * k, c * k, self.num_coeffs * k], 1)
        means = means.reshape(b, c, k, *rest)
        log_scales = log_scales.reshape(b, c, k, *rest).clamp(min=LOG_SCALE_MIN)
        coeffs = torch.tanh(coeffs.reshape(b, self.num_coeffs, k, *rest))
        return logits, means, log_scales, coeffs

    def to_unit(self, x: torch.Tensor, dtype) -> torch.Tensor:
        """Levels -> bin centres on [-1, 1]."""
        return x.to(dtype) * (2.0 / (self.levels - 1)) - 1.0

    def shifted_means(self, means, coeffs, xu):
        """Component means after the linear dependence on earlier channels (§2.2).

        ``means [B, C, K, ...]``, ``xu [B, C, ...]`` (values on [-1, 1]); channel c
        adds ``sum_{c' < c} coeff(c', c) * x_c'``, coefficients ordered (0,1), (0,2), (1,2), ...
        """
        out = [means[:, 0]]
        idx = 0
        for c in range(1, self.channels):
            m = means[:, c]
            for prev in range(c):
                m = m + coeffs[:, idx] * xu[:, prev, None]
                idx += 1
            out.append(m)
        return torch.stack(out, 1)

    def component_log_probs(self, params: torch.Tensor, x: torch.Tensor):
        """Mixture log-weights ``[B, K, ...]`` and ``log p_k(x_c | x_<c)`` ``[B, C, K, ...]``."""
        logits, means, log_scales, coeffs = self.split(params)
        xu = self.to_unit(x, means.dtype)  # (B, C, ...)
        mu = self.shifted_means(means, coeffs, xu)
        centred = xu[:, :, None] - mu  # (B, C, K, ...)
        inv_s = torch.exp(-log_scales)
        half = 1.0 / (self.levels - 1)
        a, b = inv_s * (centred + half), inv_s * (centred - half)
        log_a, log_not_b = F.logsigmoid(a), F.logsigmoid(-b)
        width = _log1mexp(2.0 * half * inv_s, math.log(2.0 * half) - log_scales)
        v = x[:, :, None].expand_as(a)
        lp = torch.where(
            v == 0,
            log_a,
            torch.where(v == self.levels - 1, log_not_b, log_a + log_not_b + width),
        )
        return torch.log_softmax(logits, 1), lp

    def log_prob(self, params, x):
        log_w, lp = self.component_log_probs(params, x)
        # p(x_c | x_<c) = sum_k p(k | x_<c) p_k(x_c | x_<c): the components' posterior
        # given the earlier channels (a log-softmax, so no large log-probabilities are
        # subtracted from each other), then a log-sum-exp over components.
        earlier = torch.cat([torch.zeros_like(lp[:, :1]), lp[:, :-1].cumsum(1)], 1)
        posterior = torch.log_softmax(log_w[:, None] + earlier, dim=2)  # (B, C, K, ...)
        return torch.logsumexp(posterior + lp, dim=2)  # (B, C, ...)

    def sample_pixel(self, params: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Draw a whole pixel: ``params [B, P]``, uniforms ``u [B, 1 + C]`` -> levels ``[B, C]``.

        The component is the inverse CDF of the mixture weights at ``u[:, 0]``;
        channel c is a logistic draw ``mu + s * logit(u[:, 1 + c])`` rounded to the
        nearest level (the edge bins take everything beyond them), with ``mu``
        shifted by the already drawn, quantized channels.
        """
        logits, means, log_scales, coeffs = self.split(params)
        u = u.to(means.dtype)
        cdf = torch.softmax(logits, 1).cumsum(1)
        k = (u[:, :1] > cdf).sum(1).clamp(max=self.components - 1)  # (B,)
        rows = torch.arange(len(k), device=k.device)
        m, log_s, a = means[rows, :, k], log_scales[rows, :, k], coeffs[rows, :, k]
        out = torch.zeros(len(k), self.channels, dtype=torch.long, device=k.device)
        idx = 0
        for c in range(self.channels):
            mu = m[:, c]
            for prev in range(c):
                mu = mu + a[:, idx] * self.to_unit(out[:, prev], mu.dtype)
                idx += 1
            uc = u[:, 1 + c]
            draw = mu + torch.exp(log_s[:, c]) * (torch.log(uc) - torch.log1p(-uc))
            level = torch.round((draw.clamp(-1.0, 1.0) + 1.0) * (0.5 * (self.levels - 1)))
            out[:, c] = level.long().clamp(0, self.levels - 1)
        return out
