"""A tiny autoregressive model of token sequences: the chain rule made concrete.

An autoregressive model writes the density of a sequence as a product of one-step
conditionals, each a softmax over the vocabulary:

    p_theta(x_1, ..., x_T) = prod_t p_theta(x_t | x_{t-k}, ..., x_{t-1})

Every factor is a normalised categorical, so log p_theta(x) is exact (an explicit,
tractable density) and sampling runs left to right, one token at a time. Here each
conditional is a small MLP on the embeddings of the previous ``k`` tokens (a start
token pads the left edge), a neural n-gram in the spirit of Bengio et al. (2003).

The toy data, "counting" sequences, have a known entropy, so a fitted model's test
NLL minus that entropy is its KL divergence from the truth. Train it with
``gdl_ref.train.fit(model, counting_sequences(512), steps=100, batch_size=512, lr=5e-2)``.

References:
    D. Foster, Generative Deep Learning, 2nd ed., O'Reilly 2023, ch. 1 and ch. 5.
    Y. Bengio et al., A Neural Probabilistic Language Model, JMLR 2003.
    A. van den Oord et al., Pixel Recurrent Neural Networks, ICML 2016.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gdl_ref.likelihood import Bound, DensityModule, evaluating

__all__ = [
    "DATA_NAMES",
    "SequenceConfig",
    "TinyAutoregressive",
    "build",
    "counting_entropy",
    "counting_sequences",
]

DATA_NAMES = ("counting",)


@dataclass
class SequenceConfig:
    """Sizes of the tiny autoregressive model (defaults train in about a second on a CPU)."""

    data: str = "counting"  # the data set the model is built for
    vocab: int = 5  # tokens are 0 .. vocab-1
    length: int = 12  # T: the length `sample` draws by default
    context: int = 2  # k: how many previous tokens each conditional sees
    hidden: int = 32  # width of the token embedding and of the hidden layer


def counting_sequences(n: int, length: int = 12, vocab: int = 5, noise: float = 0.2, seed: int = 0) -> Tensor:
    """Draw `n` counting sequences, int64 (n, length).

    x_1 ~ Uniform{0..V-1}; then, with probability 1 - noise, x_t = x_{t-1} + 1 (mod V),
    otherwise x_t is drawn uniformly from all V tokens (which may again be x_{t-1} + 1).
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must lie in [0, 1], got {noise}")
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, length, dtype=torch.long)  # (n, T)
    x[:, 0] = torch.randint(vocab, (n,), generator=g)
    for t in range(1, length):
        jump = torch.rand(n, generator=g) < noise  # (n,)
        x[:, t] = torch.where(jump, torch.randint(vocab, (n,), generator=g), (x[:, t - 1] + 1) % vocab)
    return x


def counting_entropy(length: int = 12, vocab: int = 5, noise: float = 0.2) -> float:
    """The exact entropy (nats per sequence) of :func:`counting_sequences`.

    H = log V + (T - 1) H_step, with H_step the entropy of one transition:
    the next token is x_{t-1}+1 with probability a = 1 - noise + noise/V, each other with b = noise/V.
    """
    a, b = 1.0 - noise + noise / vocab, noise / vocab
    h_step = -sum(p * math.log(p) for p in [a] + [b] * (vocab - 1) if p > 0)
    return math.log(vocab) + (length - 1) * h_step


class TinyAutoregressive(DensityModule):
    """p(x) = prod_t softmax(MLP(embed(x_{t-k..t-1})))[x_t], an exact likelihood."""

    bound = Bound.EXACT

    def __init__(self, config: SequenceConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SequenceConfig()
        if config.vocab < 2 or config.context < 1 or config.length < 1 or config.hidden < 1:
            raise ValueError(f"need vocab >= 2 and context, length, hidden >= 1, got {config}")
        self.start = config.vocab  # an extra token id that pads the left edge
        self.embed = nn.Embedding(config.vocab + 1, config.hidden)
        self.net = nn.Sequential(
            nn.Linear(config.context * config.hidden, config.hidden),
            nn.Tanh(),
            nn.Linear(config.hidden, config.vocab),
        )

    def _check(self, x: Tensor) -> None:
        v = self.config.vocab
        if x.dim() != 2 or x.dtype != torch.long:
            raise ValueError(f"expected x of shape (B, T) and dtype int64, got {tuple(x.shape)} {x.dtype}")
        if x.numel() and (x.min() < 0 or x.max() >= v):
            raise ValueError(f"expected tokens in 0..{v - 1}, got values in {x.min().item()}..{x.max().item()}")

    # --8<-- [start:log_prob]
    def conditional_logits(self, x: Tensor) -> Tensor:
        """Logits of p(x_t | x_{t-k..t-1}) for every t at once: (B, T) -> (B, T, V)."""
        k = self.config.context
        padded = F.pad(x, (k, 0), value=self.start)  # (B, k + T): start tokens, then x
        windows = padded.unfold(1, k, 1)[:, :-1]  # (B, T, k): window t holds x_{t-k..t-1}
        h = self.embed(windows).flatten(2)  # (B, T, k * hidden)
        return self.net(h)  # (B, T, V)

    def log_likelihood(self, x: Tensor) -> Tensor:
        """log p(x) = sum_t log p(x_t | x_{t-k..t-1}), nats, shape (B,)."""
        self._check(x)
        logp = self.conditional_logits(x).log_softmax(-1)  # (B, T, V)
        return logp.gather(-1, x.unsqueeze(-1)).squeeze(-1).sum(-1)  # chain rule: sum of log conditionals

    # --8<-- [end:log_prob]

    # --8<-- [start:sample]
    @evaluating
    @torch.no_grad()
    def sample(self, n: int, length: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw n sequences left to right, x_t ~ p(x_t | x_{t-k..t-1}): int64 (n, T)."""
        T, k = length or self.config.length, self.config.context
        device = self.embed.weight.device
        x = torch.full((n, k + T), self.start, dtype=torch.long, device=device)  # (n, k + T)
        for t in range(T):
            h = self.embed(x[:, t : t + k]).flatten(1)  # (n, k * hidden): the k tokens before x_t
            probs = self.net(h).softmax(-1)  # (n, V)
            x[:, k + t] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return x[:, k:]  # (n, T): drop the start tokens

    # --8<-- [end:sample]


def build(data: str = "counting", /, **overrides: object) -> TinyAutoregressive:
    """Make the model for `data` ("counting") with the config defaults, changed by `overrides`."""
    if data not in DATA_NAMES:
        raise ValueError(f"unknown data {data!r}; valid: {', '.join(DATA_NAMES)}")
    fields = SequenceConfig.__dataclass_fields__
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TypeError(f"unknown SequenceConfig field(s) {unknown}; valid: {sorted(fields)}")
    named = overrides.pop("data", data)
    if named != data:
        raise ValueError(f"data={data!r} disagrees with the override data={named!r}")
    return TinyAutoregressive(SequenceConfig(data=data, **overrides))  # type: ignore[arg-type]
