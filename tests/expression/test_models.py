"""Denoisers: shapes, the null class, attention across genes, architecture choice, and that they learn."""

import pytest

torch = pytest.importorskip("torch")

from omigen.diffusion import DiffusionConfig, DiffusionModel  # noqa: E402
from omigen.errors import OmigenInputError  # noqa: E402
from omigen_expression.config import DenoiserConfig  # noqa: E402
from omigen_expression.models import GeneTransformer, ResidualMLP, build_denoiser, resolve_arch  # noqa: E402


def _randomised(module):
    # Zero-initialised gates make a fresh denoiser output exactly 0; random weights exercise every path.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module.eval()


@pytest.mark.parametrize("cls", [GeneTransformer, ResidualMLP])
def test_fresh_denoiser_predicts_zero_and_shapes_match(cls):
    net = cls(5, 3)
    x, t = torch.randn(4, 5), torch.tensor([0, 10, 500, 999])
    out = net(x, t, torch.tensor([0, 1, 2, -1]))
    assert out.shape == (4, 5) and torch.count_nonzero(out) == 0


@pytest.mark.parametrize("cls", [GeneTransformer, ResidualMLP])
def test_negative_labels_and_none_use_the_null_class(cls):
    net = _randomised(cls(4, 2))
    x, t = torch.randn(3, 4), torch.tensor([5, 50, 700])
    null = net(x, t, torch.tensor([-1, -1, -1]))
    torch.testing.assert_close(null, net(x, t, None))
    assert not torch.allclose(null, net(x, t, torch.tensor([0, 0, 0])))
    assert not torch.allclose(net(x, t, torch.tensor([0, 0, 0])), net(x, t, torch.tensor([1, 1, 1])))


def test_transformer_attends_across_genes():
    net = _randomised(GeneTransformer(6, 0, dim=16, layers=2, heads=2))
    x, t = torch.randn(2, 6), torch.tensor([100, 100])
    moved = x.clone()
    moved[:, 0] += 1.0
    diff = (net(moved, t) - net(x, t)).abs()
    assert (diff[:, 1:] > 1e-6).all()  # gene 0's value reaches every other gene's prediction


def test_arch_auto_switches_at_64_genes():
    assert resolve_arch("auto", 64) == "transformer" and resolve_arch("auto", 65) == "mlp"
    assert isinstance(build_denoiser(DenoiserConfig(), {"n_genes": 16, "n_classes": 2}), GeneTransformer)
    assert isinstance(build_denoiser(DenoiserConfig(hidden=32), {"n_genes": 200, "n_classes": 2}), ResidualMLP)
    assert isinstance(build_denoiser(DenoiserConfig(arch="mlp", hidden=32), {"n_genes": 3}), ResidualMLP)
    with pytest.raises(OmigenInputError, match="denoiser.arch"):
        resolve_arch("rnn", 5)
    with pytest.raises(OmigenInputError, match="divisible"):
        build_denoiser(DenoiserConfig(dim=10, heads=4), {"n_genes": 3, "n_classes": 0})


def test_conditional_diffusion_learns_class_means():
    # Class 0 sits at -0.5 on every gene, class 1 at +0.5 (noise 0.1): samples must follow their class.
    torch.manual_seed(0)
    y = torch.arange(256) % 2
    x = (y.float()[:, None] - 0.5) + 0.1 * torch.randn(256, 3)
    net = GeneTransformer(3, 2, dim=32, layers=1, heads=2)
    model = DiffusionModel(net, DiffusionConfig(timesteps=100), sample_shape=(3,), n_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        idx = torch.randint(0, 256, (64,))
        loss = model.loss(x[idx], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = model.sample(200, y=[0] * 100 + [1] * 100, steps=20, generator=torch.Generator().manual_seed(0))
    m0, m1 = out[:100].mean(0), out[100:].mean(0)
    assert (m0 < -0.3).all() and (m0 > -0.7).all(), m0
    assert (m1 > 0.3).all() and (m1 < 0.7).all(), m1
