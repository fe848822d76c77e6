"""The taxonomy of generative models (Foster, ch. 1), as data: the tree and the trade-offs across it.

A model either writes its density down (explicit) or only samples (implicit). An explicit density is
*tractable* when log p_theta(x) can be computed exactly for any x, at a cost that grows modestly with
the dimension (a product of normalised conditionals, a change of variables); otherwise it is
*approximate*, and the model works with a bound or an approximate gradient instead:

    explicit, tractable    log p_theta(x) exact            autoregressive models, normalizing flows
    explicit, approximate  a bound, or no value at all     VAEs (ELBO), diffusion (variational bound), EBMs (Z unknown)
    implicit               samples only                    GANs

The sample costs and latent sizes in :func:`trade_offs` are read from the package's own defaults, so
a table made from them cannot drift from the code.

References:
    D. Foster, Generative Deep Learning, 2nd ed., O'Reilly 2023, ch. 1 (the taxonomy), chs. 3-9.
    I. Goodfellow, NIPS 2016 Tutorial: Generative Adversarial Networks, arXiv:1701.00160, sec. 2.
"""

from __future__ import annotations

from dataclasses import dataclass

# The branches in the order the book draws them: (label, parent label or None).
BRANCHES: list[tuple[str, str | None]] = [
    ("generative models", None),
    ("explicit density", "generative models"),
    ("tractable density", "explicit density"),
    ("approximate density", "explicit density"),
    ("implicit density", "generative models"),
]


@dataclass(frozen=True)
class Family:
    """One family of the book's Part II, where it sits, and what it costs."""

    name: str
    branch: str  # a leaf of BRANCHES
    reports: str  # what the model can say about log p(x) of a test point
    sample_cost: str  # network evaluations for one sample
    latent: str  # whether there is a latent space, and its size
    later: tuple[str, ...] = ()  # later models of the same branch


def trade_offs() -> list[Family]:
    """The six families with their costs read from the defaults of ``gdl_ref.models``."""
    from gdl_ref.models.diffusion import DiffusionConfig
    from gdl_ref.models.ebm import EBMConfig
    from gdl_ref.models.vae import VAEConfig

    pixels = 8 * 8  # the digits: one conditional per pixel
    diffusion, ebm, vae = DiffusionConfig(), EBMConfig(), VAEConfig()
    return [
        Family("autoregressive models", "tractable density", "exact log-likelihood",
               f"{pixels} passes, one per pixel, in order", "none",
               ("Transformers such as GPT (ch. 9): the same chain rule over tokens",)),
        Family("normalizing flows", "tractable density",
               "exact log-density (on pixels, a bound after dequantisation)", "one pass of the inverse",
               "z = f(x), as large as x"),
        Family("variational autoencoders", "approximate density", "a bound (ELBO, importance-weighted)",
               "one decoder pass", f"z of {vae.latent_dim} dimensions"),
        Family("diffusion models", "approximate density",
               f"a bound (the variational bound, {diffusion.timesteps:,} terms)",
               f"T = {diffusion.timesteps:,} network passes (fewer with DDIM)",
               "x_T, as large as x (a deterministic code under DDIM)",
               ("score-based models: the noise prediction is a scaled score",)),
        Family("energy-based models", "approximate density", "no likelihood (Z is unknown); samples",
               f"{ebm.sample_steps} Langevin steps, each a forward and a backward pass", "none"),
        Family("generative adversarial networks", "implicit density", "samples only", "one generator pass",
               "z, with no encoder"),
    ]


def tree(families: list[Family] | None = None) -> str:
    """The taxonomy as an indented text tree, each family under its branch."""
    families = trade_offs() if families is None else families
    lines: list[str] = []

    def walk(label: str, prefix: str, last: bool, root: bool) -> None:
        lines.append(label if root else prefix + ("└── " if last else "├── ") + label)
        child_prefix = "" if root else prefix + ("    " if last else "│   ")
        children = [b for b, parent in BRANCHES if parent == label]
        leaves = [f.name + "".join(f"  (later: {m.split(':')[0]})" for m in f.later)
                  for f in families if f.branch == label]
        items = [(c, True) for c in children] + [(leaf, False) for leaf in leaves]
        for i, (item, is_branch) in enumerate(items):
            is_last = i == len(items) - 1
            if is_branch:
                walk(item, child_prefix, is_last, False)
            else:
                lines.append(child_prefix + ("└── " if is_last else "├── ") + item)

    walk(BRANCHES[0][0], "", True, True)
    return "\n".join(lines)
