import math
import json

import pytest
import torch

from ganforge.rundir import RunDir
from ganforge.config import preset
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.game import Game
from ganforge.nets import build_discriminator, build_generator
from ganforge.data.order import BatchOrder
from ganforge.training import Trainer, train


@pytest.fixture
def pair(tiny_digits):
    cfg = preset("default").replace(width=16, z_dim=8, steps=1, num_classes=10)
    torch.manual_seed(0)
    return cfg, build_generator(cfg.model), build_discriminator(cfg.model), load_dataset(str(tiny_digits))


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_d_step_lowers_d_loss_and_leaves_g_untouched(pair):
    cfg, G, D, data = pair
    real, labels = data.batch(torch.arange(64))
    game = Game(G, D, cfg, torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(D.parameters(), lr=0.05)
    g_before = _params(G)
    fixed = torch.Generator().get_state()

    def d_loss():
        game.gen.set_state(fixed)  # the same fakes every time
        return game.d_loss(real, labels, d_step=1)[0]

    before = d_loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    assert d_loss().item() < before.item() - 1e-3
    for a, b in zip(g_before, G.parameters()):
        assert torch.equal(a, b) and b.grad is None


def test_g_step_lowers_g_loss_and_leaves_d_untouched(pair):
    cfg, G, D, _ = pair
    game = Game(G, D, cfg, torch.Generator())
    opt = torch.optim.SGD(G.parameters(), lr=0.05)
    d_before = _params(D)
    state = game.gen.manual_seed(0).get_state()
    before = game.g_loss(64, torch.device("cpu"))[0]
    opt.zero_grad()
    before.backward()
    opt.step()
    game.gen.set_state(state)
    assert game.g_loss(64, torch.device("cpu"))[0].item() < before.item() - 1e-4
    assert all(torch.equal(a, b) for a, b in zip(d_before, D.parameters()))


def test_batch_order_is_a_permutation_per_epoch_and_stateless():
    order = BatchOrder(10, 3, seed=1, device=torch.device("cpu"))
    assert order.per_epoch == 3
    epoch0 = torch.cat([order.indices(b) for b in range(3)])
    assert len(set(epoch0.tolist())) == 9
    again = BatchOrder(10, 3, seed=1, device=torch.device("cpu"))
    assert torch.equal(again.indices(4), order.indices(4))  # random access, same answer
    halves = torch.cat([order.indices(4, rank=0, world=2), order.indices(4, rank=1, world=2)])
    assert sorted(halves.tolist()) == sorted(order.indices(4).tolist())


def test_run_directory_contents(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["config"]["model"]["num_classes"] == 10 and cfg["ganforge_version"]
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "img_per_s"} <= set(records[0])
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == ["step-000003.png", "step-000006.png"]
    for name in ("loss.png", "classes.png", "checkpoints/last.safetensors"):
        assert (tiny_run / name).stat().st_size > 0


@pytest.mark.slow
def test_resume_equals_uninterrupted(tiny_config, tmp_path):
    cfg = tiny_config.replace(ema=0.9, n_dis=2)
    train(cfg.replace(steps=6), tmp_path / "straight", progress=False)
    train(cfg.replace(steps=3), tmp_path / "split", progress=False)
    train(cfg.replace(steps=6), tmp_path / "split", resume=True, progress=False)
    a = RunDir(tmp_path / "straight").checkpoint()
    b = RunDir(tmp_path / "split").checkpoint()
    from safetensors.torch import load_file

    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys() and len(ta) > 20
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_existing_run_is_not_overwritten(tiny_config, tmp_path):
    train(tiny_config.replace(steps=2), tmp_path / "r", progress=False)
    before = RunDir(tmp_path / "r").checkpoint().read_bytes()
    with pytest.raises(GanforgeError, match="already holds a run"):
        train(tiny_config, tmp_path / "r", progress=False)
    assert RunDir(tmp_path / "r").checkpoint().read_bytes() == before


def test_unconditional_and_dcgan_train(tiny_config, tmp_path):
    for i, changes in enumerate([dict(num_classes=0, conditioning="input"), dict(net="dcgan", width=8),
                                 dict(net="dcgan", width=8, conditioning="input")]):
        t = Trainer(tiny_config.replace(steps=2, **changes), tmp_path / str(i), progress=False)
        t.train()
        assert t.state.step == 2
        assert all(torch.isfinite(p).all() for p in t.state.G.parameters())


def test_conditional_on_flat_folder_is_an_error(tmp_path, tiny_config):
    from PIL import Image

    for i in range(4):
        Image.new("L", (28, 28), 30 * i).save(tmp_path / f"{i}.png")
    with pytest.raises(GanforgeError, match="--unconditional"):
        train(tiny_config.replace(data=str(tmp_path)), tmp_path / "run", progress=False)


def test_compile_keeps_its_kernel_cache_under_ganforge_data(tiny_config, tmp_path, monkeypatch):
    # torch's default (/tmp/torchinductor_$USER) is emptied at reboot: a cold compile costs a
    # minute or more, so --compile caches where ganforge keeps its data (conftest: a tmp dir).
    from torch._inductor.runtime.cache_dir_utils import cache_dir as inductor_cache_dir

    from ganforge.data.mnist import cache_dir

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    Trainer(tiny_config.replace(compile=True), tmp_path / "a", progress=False)  # compiles lazily: no step
    assert inductor_cache_dir() == str(cache_dir() / "inductor")
    assert cache_dir().is_relative_to(tmp_path.parent)  # never the user's own cache in a test

    mine = tmp_path / "mine"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(mine))
    Trainer(tiny_config.replace(compile=True), tmp_path / "b", progress=False)
    assert inductor_cache_dir() == str(mine)  # the user's choice wins


def test_ema_rampup_caps_the_half_life_at_a_share_of_the_steps():
    from ganforge.training.state import ema_decay

    assert ema_decay(0.995, 0.0, 10) == 0.995  # off: the fixed decay from the first step
    assert ema_decay(0.999, 0.05, 0) == 0.0  # step 0: G_ema is a copy of G
    # At step 1000 the half-life may be 50 steps: decay 0.5 ** (1 / 50)
    assert abs(ema_decay(0.999, 0.05, 1000) - 0.5 ** (1 / 50)) < 1e-12
    assert ema_decay(0.999, 0.05, 10**6) == 0.999  # old runs: the configured decay
    half_life = math.log(0.5) / math.log(ema_decay(0.9999, 0.1, 400))
    assert 39.9 < half_life < 40.1


def test_amp_auto_uses_bf16_only_where_the_device_has_it(monkeypatch, tiny_config, tmp_path):
    from ganforge import dist
    from ganforge.training import Trainer

    cpu = torch.device("cpu")
    assert dist.uses_bf16("bf16", cpu) and not dist.uses_bf16("off", cpu)
    assert not dist.uses_bf16("auto", torch.device("mps"))
    for native in (True, False):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda native=native: native)
        assert dist.uses_bf16("auto", cpu) is native
        trainer = Trainer(tiny_config.replace(amp="auto"), tmp_path / f"run{native}", progress=False)
        with trainer.autocast():
            fake = trainer.state.G(torch.randn(2, tiny_config.model.z_dim), torch.tensor([0, 1]))
        assert (fake.dtype == torch.bfloat16) is native


def _step_with_one_context_per_update(trainer):
    """The bf16 step as the game defines it: a fresh autocast context (fresh casts of every
    weight) for each D update and for the G update."""
    s, cfg = trainer.state, trainer.cfg
    s.D.requires_grad_(True)
    for i in range(cfg.n_dis):
        d_step = s.step * cfg.n_dis + i
        real, labels = trainer.data.batch(trainer.order.indices(d_step, 0, 1))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss_d, _ = trainer.game.d_loss(real, labels, d_step)
        s.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        s.opt_d.step()
    s.D.requires_grad_(False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_g, _ = trainer.game.g_loss(cfg.batch_size, trainer.device)
    s.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    s.opt_g.step()
    s.step += 1


@pytest.mark.parametrize("n_dis", [1, 2])
def test_a_bf16_step_reuses_only_casts_that_no_update_made_stale(tiny_config, tmp_path, n_dis):
    # Trainer.step keeps one autocast context for the whole step, so G's weights are cast once;
    # every update must still see the other player's current weights, as with a context each.
    cfg = tiny_config.replace(amp="bf16", n_dis=n_dis, ema=0.0)
    ours, reference = (Trainer(cfg, tmp_path / name, progress=False) for name in ("ours", "reference"))
    for _ in range(2):
        ours.step()
        _step_with_one_context_per_update(reference)
    for a, b in zip([*ours.state.G.parameters(), *ours.state.D.parameters()],
                    [*reference.state.G.parameters(), *reference.state.D.parameters()]):
        assert torch.equal(a, b)


def test_a_run_stores_the_depths_it_was_built_with(tiny_config, tmp_path):
    # Resolved to numbers, so a later default cannot change the nets a checkpoint was trained with.
    assert tiny_config.replace(net="dcgan").model.d_depth is None and tiny_config.model.g_depth is None
    dcgan = Trainer(tiny_config.replace(net="dcgan", width=8), tmp_path / "a", progress=False).cfg.model
    assert (dcgan.d_depth, dcgan.g_depth) == (1, 1)
    mlp = Trainer(tiny_config, tmp_path / "b", progress=False).cfg.model
    assert (mlp.d_depth, mlp.g_depth) == (0, 0)  # the mlp has no such layers
