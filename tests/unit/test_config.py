import pytest

from ganforge.config import PRESETS, TrainConfig, preset, validate
from ganforge.errors import GanforgeError


def test_presets_are_valid_and_tutorial_matches_the_classic_notebook():
    for name in PRESETS:
        validate(preset(name))
    t = preset("tutorial")
    assert (t.model.net, t.model.width, t.model.z_dim, t.model.conditional) == ("mlp", 128, 64, False)
    assert (t.batch_size, t.lr_g, t.lr_d, t.betas, t.loss) == (128, 1e-5, 1e-5, (0.9, 0.999), "bce")
    assert preset("default").model.conditional


def test_round_trip_through_dict():
    cfg = preset("default").replace(lr_g=3e-4, width=32)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_a_file_from_before_ema_rampup_resumes_without_it():
    # Such runs used the fixed decay; the ramp-up default (0.05) must not change their G_ema mid-run.
    d = preset("default").to_dict()
    del d["ema_rampup"]
    assert preset("default").ema_rampup == 0.05
    assert TrainConfig.from_dict(d).ema_rampup == 0.0


@pytest.mark.parametrize("field, depth", [("d_depth", "discriminator_depth"), ("g_depth", "generator_depth")])
def test_a_file_from_before_the_depths_keeps_its_classic_nets(field, depth):
    # Such dcgan runs had no stride-1 convolutions in D or G: their weights must still fit.
    d = preset("default").to_dict()
    assert d["model"][field] is None and getattr(preset("default").model, depth) == 1
    del d["model"][field]
    assert getattr(TrainConfig.from_dict(d).model, depth) == 0


def test_unknown_fields_are_rejected():
    d = preset("default").to_dict()
    d["lr_gg"] = 1
    with pytest.raises(GanforgeError, match="lr_gg"):
        TrainConfig.from_dict(d)


@pytest.mark.parametrize("change, field", [
    ({"batch_size": 0}, "batch_size"), ({"lr_g": -1.0}, "lr_g"), ({"lr_d": float("nan")}, "lr_d"),
    ({"betas": (0.5, 1.0)}, "betas"), ({"z_dim": 0}, "z_dim"), ({"net": "vit"}, "net"),
    ({"loss": "bc"}, "loss"), ({"ema": 1.0}, "ema"), ({"seed": -1}, "seed"), ({"steps": 0}, "steps"),
    ({"img_resolution": 30}, "img_resolution"), ({"minutes": 0.0}, "minutes"),
    ({"steps": None, "epochs": None, "minutes": None}, "budget"),
    ({"latent_bits": -1}, "latent_bits"), ({"latent_bits": 17}, "latent_bits"),
    ({"z_dim": 4, "latent_bits": 5}, "latent_bits"), ({"latent_bits": True}, "latent_bits"),
    ({"net": "toy", "num_classes": 0, "conditioning": "input", "latent_bits": 1}, "latent_bits.*toy"),
    ({"d_depth": -1}, "d_depth"), ({"d_depth": 5}, "d_depth"), ({"d_depth": 1.0}, "d_depth"),
    ({"net": "mlp", "d_depth": 1}, "d_depth deepens the dcgan D; net 'mlp'"),
    ({"g_depth": -1}, "g_depth"), ({"g_depth": 5}, "g_depth"), ({"g_depth": True}, "g_depth"),
    ({"net": "resnet", "g_depth": 1}, "g_depth deepens the dcgan G; net 'resnet'"),
    ({"img_channels": 1.0}, "img_channels"), ({"data": None}, "data"), ({"data": ""}, "data"),
    ({"data": "x" * 5000}, "data"),
])
def test_invalid_values_name_the_field(change, field):
    with pytest.raises(GanforgeError, match=field):
        validate(preset("default").replace(**change))


def test_unknown_preset():
    with pytest.raises(GanforgeError, match="unknown preset"):
        preset("fast")
