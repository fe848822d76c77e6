"""Peer: torchcfm's conditional flow matching (a continuous normalizing flow), paired with ``flow``.

What a user would otherwise pick to train a flow by flow matching in PyTorch. A velocity network v(t, x)
(torchcfm's own ``MLP`` with the time as an extra input) is trained with torchcfm's
``ConditionalFlowMatcher`` (I-CFM, sigma = 0): for x_0 ~ N(0, I) and a data point x_1,
x_t = (1 - t) x_0 + t x_1 with t ~ U[0, 1] and u_t = x_1 - x_0 from ``sample_location_and_conditional_flow``,
and the loss is mean ||v(t, x_t) - u_t||^2 (over the batch and the coordinates, as torchcfm's examples take it).
The independent coupling, not ``ExactOptimalTransportConditionalFlowMatcher``: the minibatch OT plan draws its
pairs with numpy's global random state, which the harness's torch seed does not fix, so a seed would not
repeat a run (nor the early stopping on the val loss); sigma = 0 makes the path end exactly on the data.

* Sampling integrates dx/dt = v(t, x) from x_0 ~ N(0, I) at t = 0 to t = 1 with torchdiffeq's ``odeint``.
* ``log_prob`` uses the instantaneous change of variables (Chen et al., 2018): integrating the augmented
  state (x, a) with da/dt = tr(dv/dx) backwards from x at t = 1 to t = 0 gives
  log p_1(x) = log N(x_0; 0, I) - int_0^1 tr(dv/dx)(t, x_t) dt. The trace is the exact one, the diagonal of
  the full D x D Jacobian (``torch.func.vmap(jacrev)``), not Hutchinson's estimate, so the number is
  deterministic. ODE: ``ODE_METHOD`` with ``ODE_TOL`` for both directions (below); the density is that of the
  continuous-time flow up to the solver's error.
* 2-D toys: the points are modelled directly; ``bound = DIFFERENTIAL`` (a continuous density).
* Digits: the same uniform dequantisation and logit as our ``ImageFlow`` and zuko's flows,
  y = (x + u) / 17 with u ~ U[0, 1)^64 and v = logit(a + (1 - 2a) y), a = 0.05; the CNF models v in R^64 and

      -log P(x) <= -log p_V(v) - log |dv/dy| + 64 log 17   (in expectation over u),

  one draw of u per call, the number our ``ImageFlow.log_prob`` returns; ``bound = DEQUANTIZED``. Samples are
  v -> y -> the level floor(17 y).

Cost: every evaluation of the dynamics in ``log_prob`` builds a D x D Jacobian per example, so scoring the 447
test digits takes minutes on two CPU cores where our flow takes a second.

References: Lipman, Chen, Ben-Hamu, Nickel & Le, "Flow Matching for Generative Modeling" (2023); Tong et al.,
"Improving and Generalizing Flow-Based Generative Models with Minibatch Optimal Transport" (2023); Chen,
Rubanova, Bettencourt & Duvenaud, "Neural Ordinary Differential Equations" (2018); torchcfm,
https://github.com/atong01/conditional-flow-matching; torchdiffeq, https://github.com/rtqichen/torchdiffeq.
"""

from __future__ import annotations

import math

import torch
import torchcfm
import torchdiffeq
from torch import Tensor, nn
from torch.func import jacrev, vmap
from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
from torchcfm.models import MLP

from gdl_ref import data as gdata
from gdl_ref.bench import Peer
from gdl_ref.likelihood import Bound, log_normal
from gdl_ref.models.flows import FlowConfig, from_logit, to_logit

LOGIT_ALPHA = FlowConfig.logit_alpha  # ours, so every flow on the digits sees the same v
WIDTHS = {"toy": 256, "digits": 512}  # hidden width of the 3-hidden-layer SELU MLP (torchcfm.models.MLP)
ODE_METHOD = "dopri5"  # adaptive Dormand-Prince 5(4), both directions
ODE_TOL = 1e-5  # its rtol and atol (FFJORD's choice)


class CFMFlow(nn.Module):
    """A continuous normalizing flow trained by conditional flow matching: loss, log_prob (nats), sample."""

    def __init__(self, data: str, *, method: str = ODE_METHOD, tol: float = ODE_TOL) -> None:
        super().__init__()
        self.digits = data == "digits"
        self.bound = Bound.DEQUANTIZED if self.digits else Bound.DIFFERENTIAL
        self.dims = gdata.DIGIT_DIMS if self.digits else 2
        self.net = MLP(self.dims, w=WIDTHS["digits" if self.digits else "toy"], time_varying=True)  # [x, t] -> v
        self.matcher = ConditionalFlowMatcher(sigma=0.0)
        self.method, self.tol = method, tol

    def velocity(self, t: Tensor, x: Tensor) -> Tensor:
        """v(t, x) for x (B, D) and one time t (a 0-d tensor)."""
        return self.net(torch.cat([x, t.to(x).expand(x.shape[0], 1)], dim=-1))

    def _continuous(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The modelled variable (B, D) and log|d it / d y| (B,): digits -> the dequantised logit v; toys as they are."""
        if not self.digits:
            return x, torch.zeros(x.shape[0], device=x.device)
        gdata.check_digits(x)
        return to_logit(gdata.dequantize(x).flatten(1), LOGIT_ALPHA)

    def loss(self, x: Tensor) -> Tensor:
        x1, _ = self._continuous(x)
        x0 = torch.randn_like(x1)
        t, xt, ut = self.matcher.sample_location_and_conditional_flow(x0, x1)
        return ((self.net(torch.cat([xt, t[:, None]], dim=-1)) - ut) ** 2).mean()

    def _odeint(self, f, state: Tensor, t0: float, t1: float) -> Tensor:  # type: ignore[no-untyped-def]
        times = torch.tensor([t0, t1], dtype=state.dtype, device=state.device)
        return torchdiffeq.odeint(f, state, times, method=self.method, rtol=self.tol, atol=self.tol)[-1]

    def log_prob_continuous(self, x1: Tensor) -> Tensor:
        """log p_1(x1) (B,) by the instantaneous change of variables with the exact trace."""

        def with_value(t: Tensor, xi: Tensor) -> tuple[Tensor, Tensor]:
            v = self.velocity(t, xi[None])[0]
            return v, v

        def dynamics(t: Tensor, state: Tensor) -> Tensor:
            jac, v = vmap(jacrev(with_value, argnums=1, has_aux=True), in_dims=(None, 0))(t, state[:, :-1])
            return torch.cat([v, jac.diagonal(dim1=-2, dim2=-1).sum(-1, keepdim=True)], dim=-1)  # (B, D + 1)

        start = torch.cat([x1, torch.zeros(x1.shape[0], 1, device=x1.device, dtype=x1.dtype)], dim=-1)
        end = self._odeint(dynamics, start, 1.0, 0.0)  # a(0) = -int_0^1 tr(dv/dx) dt, a(1) = 0
        return log_normal(end[:, :-1]) + end[:, -1]

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """(B,) nats: on toys log p(x); on digits the one-draw dequantised bound in the discrete space."""
        x1, logdet = self._continuous(x)
        log_p = self.log_prob_continuous(x1)
        if not self.digits:
            return log_p
        return log_p + logdet - gdata.DIGIT_DIMS * math.log(gdata.DIGIT_LEVELS)  # log p_Y(y) - 64 log 17

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        x0 = torch.randn(n, self.dims, device=next(self.parameters()).device)
        x1 = self._odeint(self.velocity, x0, 0.0, 1.0)
        if not self.digits:
            return x1
        return gdata.quantize(from_logit(x1, LOGIT_ALPHA)).view(n, *gdata.DIGIT_SHAPE)


def _versions() -> dict[str, str]:
    return {"torchcfm": torchcfm.__version__, "torchdiffeq": torchdiffeq.__version__}


PEERS = [Peer("torchcfm CFM", "flow", ("digits", *gdata.TOY_NAMES), CFMFlow, _versions)]
