"""The benchmarks page's figure: bits per dimension on the digits for each likelihood family, drawn as SVG.

One line a model: our model as a filled dot with a bar of ± one sd over seeds (its own standard error
with one seed), each peer as an open dot on the line below ours, and the family's target as a dashed
tick. The SVG is written by hand from the recorded JSON, so that the page's generator makes it with
nothing installed, byte for byte the same each time, and a test can compare it with the page. It
draws in ``currentColor``, so it follows the site's light and dark schemes.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from gdl_ref.bench.report import aggregate, spread
from gdl_site.benchmark_targets import BITS_TARGETS

__all__ = ["bits_rows", "bits_figure"]

DIGIT_TARGETS = BITS_TARGETS

_WIDTH, _LEFT, _RIGHT, _LINE, _TOP = 640, 210, 24, 26, 16


def bits_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The aggregated digits rows with bits/dim, ours before each family's peers, families in target order."""
    found = [r for r in aggregate(rows) if r["data"] == "digits" and "error" not in r
             and r.get("test_bits_per_dim") is not None]
    order = list(DIGIT_TARGETS)
    return sorted(found, key=lambda r: (order.index(r["family"]) if r["family"] in order else len(order),
                                        bool(r.get("peer"))))


def _label(row: dict[str, Any]) -> str:
    return f"{row['model']} (peer)" if row.get("peer") else f"{row['family']}: {row['model']}"


def bits_figure(rows: list[dict[str, Any]]) -> str:
    """An SVG of bits/dim per model with its spread and the targets; '' when no row has bits/dim."""
    shown = bits_rows(rows)
    if not shown:
        return ""
    points = [(r["test_bits_per_dim"], spread(r, "test_bits_per_dim") or 0.0) for r in shown]
    targets = [DIGIT_TARGETS[r["family"]] for r in shown if r["family"] in DIGIT_TARGETS and not r.get("peer")]
    low = math.floor(min([v - s for v, s in points] + targets) * 10) / 10
    high = math.ceil(max([v + s for v, s in points] + targets) * 10) / 10
    if high - low < 0.2:
        high = low + 0.2
    height = _TOP + _LINE * len(shown) + 40

    def x(value: float) -> float:
        return _LEFT + (value - low) / (high - low) * (_WIDTH - _LEFT - _RIGHT)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" '
             f'aria-labelledby="bits-title" style="max-width:{_WIDTH}px" font-size="12" font-family="sans-serif">',
             '<title id="bits-title">Test bits per dimension on the digits, ours and the peers, with the targets'
             '</title>']
    ticks = [round(low + 0.1 * i, 1) for i in range(int(round((high - low) / 0.1)) + 1)]
    axis_y = _TOP + _LINE * len(shown) + 4
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" y1="{_TOP - 6}" x2="{x(t):.1f}" y2="{axis_y}" stroke="currentColor" '
                     f'stroke-opacity="0.15"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="currentColor">{t:.1f}</text>')
    parts.append(f'<text x="{(_LEFT + _WIDTH - _RIGHT) / 2:.1f}" y="{axis_y + 32}" text-anchor="middle" '
                 f'fill="currentColor">test bits/dim (lower is better); dashed: the target</text>')
    for i, (row, (value, sd)) in enumerate(zip(shown, points)):
        y = _TOP + _LINE * i + _LINE / 2
        parts.append(f'<text x="{_LEFT - 10}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor">'
                     f'{escape(_label(row))}</text>')
        if row["family"] in DIGIT_TARGETS and not row.get("peer"):
            tx = x(DIGIT_TARGETS[row["family"]])
            parts.append(f'<line x1="{tx:.1f}" y1="{y - 9:.1f}" x2="{tx:.1f}" y2="{y + 9:.1f}" stroke="currentColor" '
                         f'stroke-width="2" stroke-dasharray="3 2"/>')
        parts.append(f'<line x1="{x(value - sd):.1f}" y1="{y:.1f}" x2="{x(value + sd):.1f}" y2="{y:.1f}" '
                     f'stroke="currentColor" stroke-width="2"/>')
        fill = 'fill="none" stroke="currentColor" stroke-width="1.5"' if row.get("peer") else 'fill="currentColor"'
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4.5" {fill}>'
                     f'<title>{escape(_label(row))}: {value:.3f} ± {sd:.3f}</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)
