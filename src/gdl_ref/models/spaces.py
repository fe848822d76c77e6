"""How data enter and leave a model that works on continuous values (a GAN's critic, an energy network).

Digits enter dequantised, 2y - 1 in [-1, 1) with y = (x + u) / 17 (Theis et al., 2016), and the model's values in
[-1, 1] leave as levels 0..16; 2-D points pass as they are. A model class lists one of these before its base class.
"""

from __future__ import annotations

from torch import Tensor

from gdl_ref import data as gdata

__all__ = ["SignedImages", "Points"]


class SignedImages:
    """Digits (B, 1, 8, 8) <-> dequantised values in [-1, 1)."""

    def prepare(self, x: Tensor) -> Tensor:
        """Levels 0..16 -> dequantised, 2y - 1 in [-1, 1)."""
        gdata.check_digits(x)
        return gdata.dequantize_signed(x)

    def to_data(self, v: Tensor) -> Tensor:
        """[-1, 1] -> levels 0..16, int64 (n, 1, 8, 8)."""
        return gdata.quantize_signed(v)


class Points:
    """2-D points (B, 2), unchanged both ways."""

    def prepare(self, x: Tensor) -> Tensor:
        gdata.check_points(x)
        return x

    def to_data(self, v: Tensor) -> Tensor:
        return v
