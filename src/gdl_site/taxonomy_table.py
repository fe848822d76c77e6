"""The chapter-1 table of trade-offs: :func:`gdl_ref.lessons.taxonomy.trade_offs`, each cell linked to
the section of the site that shows it.

The table sits in ``docs/chapters/generative-modelling.md`` between two comments; a test compares the
two, and ``python -m gdl_site.taxonomy_table`` prints it anew.
"""

from __future__ import annotations

from dataclasses import dataclass

from gdl_ref.lessons.taxonomy import Family, trade_offs

__all__ = ["Evidence", "EVIDENCE", "trade_off_table"]


@dataclass(frozen=True)
class Evidence:
    """Where the site shows a family and each of its cells (paths relative to ``docs/``)."""

    page: str
    reports: str
    sample_cost: str
    latent: str


EVIDENCE: dict[str, Evidence] = {
    "autoregressive models": Evidence("families/autoregressive.md", "benchmarks.md#autoregressive-models",
                                      "families/autoregressive.md#ar-temperature",
                                      "families/autoregressive.md#ar-chain-rule"),
    "normalizing flows": Evidence("families/flows.md", "benchmarks.md#normalizing-flows",
                                  "families/flows.md#flow-stacking", "families/flows.md#flow-change-of-variables"),
    "variational autoencoders": Evidence("families/vae.md", "benchmarks.md#variational-autoencoders",
                                         "families/vae.md#vae-digits", "notebooks/vae.md"),
    "diffusion models": Evidence("families/diffusion.md", "benchmarks.md#diffusion-models",
                                 "families/diffusion.md#ddim", "families/diffusion.md#ddim"),
    "energy-based models": Evidence("families/ebm.md", "families/ebm.md#ebm-evaluation",
                                    "families/ebm.md#ebm-langevin-images", "families/ebm.md#ebm-energy"),
    "generative adversarial networks": Evidence("families/gan.md", "benchmarks.md#gans", "families/gan.md#dcgan",
                                                "notebooks/gan.md"),
}


def trade_off_table(families: list[Family] | None = None, base: str = "../") -> str:
    """The trade-offs as a Markdown table, every cell linked to the section that shows it.

    ``base`` is the path from the page that shows the table to ``docs/``.

    Raises:
        KeyError: a family that :data:`EVIDENCE` does not place on the site.
    """
    families = trade_offs() if families is None else families
    rows = ["| family | branch | what it can report | what a sample costs | latent space |",
            "|---|---|---|---|---|"]
    for f in families:
        if f.name not in EVIDENCE:
            raise KeyError(f"{f.name!r} has no place on the site: add it to EVIDENCE in {__name__}")
        at = EVIDENCE[f.name]
        rows.append(f"| [{f.name}]({base}{at.page}) | {f.branch.removesuffix(' density')} "
                    f"| [{f.reports}]({base}{at.reports}) | [{f.sample_cost}]({base}{at.sample_cost}) "
                    f"| [{f.latent}]({base}{at.latent}) |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m gdl_site.taxonomy_table: print the table for the chapter page
    print(trade_off_table())
