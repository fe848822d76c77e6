"""Config fields are checked by type and range when the config is made, and the message names the field."""

from __future__ import annotations

import math

import pytest

from gdl_ref import cli
from gdl_ref.lessons import discriminative, mle
from gdl_ref.models import registry
from gdl_ref.models.config_fields import INT_MAX

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("family", registry.names())
@pytest.mark.parametrize("data", ["digits", "moons"])
def test_every_family_default_config_passes_its_own_checks(family: str, data: str) -> None:
    config = registry.module(family).config_for(data)
    assert config.data == data


@pytest.mark.parametrize("config", [mle.MLEConfig, discriminative.ClassifierConfig])
def test_every_lesson_default_config_passes_its_own_checks(config: type) -> None:
    for data in config.DATA:
        assert config.for_data(data).data == data


def test_a_seed_may_be_zero_but_not_negative() -> None:
    assert mle.MLEConfig.for_data("moons", seed=0).seed == 0
    with pytest.raises(ValueError, match=r"MLEConfig.seed = -1: must be an integer in 0\.\.4294967295"):
        mle.MLEConfig.for_data("moons", seed=-1)


@pytest.mark.parametrize("value, message", [
    (-3, r"PixelCNNConfig.hidden = -3: must be an integer in 1\.\.1048576"),
    (0, r"PixelCNNConfig.hidden = 0: must be an integer in 1\.\.1048576"),
    ("abc", r"PixelCNNConfig.hidden = 'abc': must be an integer"),
    (2.5, r"PixelCNNConfig.hidden = 2.5: must be an integer"),
    (True, r"PixelCNNConfig.hidden = True: must be an integer"),
    (INT_MAX + 1, r"PixelCNNConfig.hidden = 1048577: must be an integer in 1\.\.1048576"),
])
def test_an_integer_field_out_of_type_or_range_is_named(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        registry.build("autoregressive", "digits", hidden=value)


def test_floats_bools_strings_tuples_and_optionals_are_checked() -> None:
    with pytest.raises(ValueError, match=r"PixelCNNConfig.dropout = nan: must be a finite number in \[0, 1\]"):
        registry.build("autoregressive", "digits", dropout=math.nan)
    with pytest.raises(ValueError, match=r"PixelCNNConfig.dropout = 1.5: must be a finite number in \[0, 1\]"):
        registry.build("autoregressive", "digits", dropout=1.5)
    with pytest.raises(ValueError, match=r"PixelCNNConfig.coordinates = 1: must be True or False"):
        registry.build("autoregressive", "digits", coordinates=1)
    with pytest.raises(ValueError, match=r"DiffusionConfig.schedule = 'quadratic': must be one of 'linear', 'cosine'"):
        registry.build("diffusion", "digits", schedule="quadratic")
    with pytest.raises(ValueError, match=r"DiffusionConfig.mults\[1\] = -2: must be an integer"):
        registry.build("diffusion", "digits", mults=(1, -2))
    with pytest.raises(ValueError, match=r"EBMConfig.betas = \(0.5,\): must hold 2 element"):
        registry.build("ebm", "moons", betas=(0.5,))
    assert registry.build("diffusion", "digits", mults=[1, 2], sample_steps=None).config.mults == (1, 2)
    assert registry.build("flow", "moons", scale_clamp=-1.0 + 3).config.scale_clamp == 2.0


@pytest.mark.parametrize("setting, field", [("hidden=-3", "PixelCNNConfig.hidden = -3"),
                                            ("hidden=abc", "PixelCNNConfig.hidden = 'abc'")])
def test_the_cli_names_the_field_without_a_traceback(tmp_path, capsys, setting: str, field: str) -> None:
    code = cli.main(["train", "autoregressive", "--data", "digits", "--set", setting, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"gdl-ref train: error: argument --set: {field}: must be an integer in 1..1048576" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
