"""conv-filter: the batched teacher-student engine (gradients, inputs, patches, recovery) and its setup file."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rectlab.reproduce.core import studies_dir
from rectlab.reproduce.vectorized.planted_filter import (
    DISTRIBUTIONS,
    ConvSetup,
    Trajectories,
    _grad,
    load_setup,
    make_patches,
    patches,
    sample_inputs,
    teacher,
    train_students,
)

TINY = ConvSetup(
    trials=16,
    filter_size=4,
    patches=3,
    strides=(4, 1),
    closeness=(0.9,),
    gd_steps=150,
    gd_samples=128,
    sgd_steps=400,
    sgd_stride=4,
    eval_every=5,
)


@pytest.mark.parametrize("shared", [True, False])
def test_written_out_gradient_equals_autograd(shared) -> None:
    gen = torch.Generator().manual_seed(0)
    t, n, k, p = 5, 7, 3, 4
    z = torch.randn((n, k, p) if shared else (t, n, k, p), generator=gen, dtype=torch.float64)
    w = torch.randn(t, p, generator=gen, dtype=torch.float64, requires_grad=True)
    y = teacher(z, torch.randn(t, p, generator=gen, dtype=torch.float64))
    pre = torch.einsum("nkp,tp->tnk" if shared else "tnkp,tp->tnk", z, w)
    f = torch.relu(pre).mean(-1)  # (t, n): average pooling of the ReLU outputs
    loss = (0.5 * (f - (y.T if shared else y)) ** 2).mean(1).sum()
    (expected,) = torch.autograd.grad(loss, w)
    torch.testing.assert_close(_grad(z, y, w.detach()), expected)


def test_patches_and_closeness() -> None:
    x = torch.arange(12.0)
    assert patches(x, 4, 2, 3).tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    gen = torch.Generator().manual_seed(0)
    z = make_patches(TINY, "uniform", (20000,), 4, 0.9, gen)
    corr = torch.corrcoef(torch.stack([z[:, 0, 0], z[:, 2, 0]]))[0, 1]
    assert z.shape == (20000, 3, 4) and abs(float(corr) - 0.9) < 0.02
    overlap = make_patches(TINY, "gaussian", (5,), 1, 0.0, gen)
    assert torch.equal(overlap[:, 0, 1:], overlap[:, 1, :-1])  # stride 1: neighbours share 3 of 4 entries


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_inputs_have_zero_mean_and_unit_variance(dist) -> None:
    x = sample_inputs(dist, (200_000,), torch.Generator().manual_seed(1))
    assert abs(float(x.mean())) < 0.01 and abs(float(x.var()) - 1.0) < 0.02
    if dist == "rademacher":
        assert set(x.unique().tolist()) == {-1.0, 1.0}


def test_gradient_descent_recovers_the_planted_filter() -> None:
    for dist, most in (("gaussian", 15), ("rademacher", 10)):  # +-1 inputs in 4-d: a few inits end elsewhere
        tr = train_students(TINY, dist=dist, stride=4, method="gd")
        assert tr.distance.shape == (16, len(tr.steps)) and tr.steps[0] == 0 and tr.steps[-1] == TINY.gd_steps
        assert int((tr.final() < TINY.success_tol).sum()) >= most, dist
    # the same (w*, w0) draws in every condition: the starting distances agree
    a = train_students(TINY, dist="gaussian", stride=4, method="gd")
    b = train_students(TINY, dist="uniform", stride=1, method="gd", closeness=0.0)
    assert torch.equal(a.distance[:, 0], b.distance[:, 0])


def test_sgd_with_label_noise_needs_the_second_stage() -> None:
    setup = dataclasses.replace(TINY, sgd_noise=0.05, sgd_lr_large=1.0, sgd_lr_small=0.02)
    large = train_students(setup, dist="uniform", stride=4, method="sgd", schedule="large")
    two = train_students(setup, dist="uniform", stride=4, method="sgd", schedule="two-stage")
    assert float(two.final().median()) < 0.5 * float(large.final().median())
    with pytest.raises(ValueError, match="schedule must be one of"):
        train_students(setup, dist="uniform", stride=4, method="sgd", schedule="cosine")


def test_steps_to_is_censored_at_the_budget() -> None:
    tr = Trajectories([0, 10, 20], torch.tensor([[1.0, 0.5, 0.005], [1.0, 0.9, 0.8], [0.01, 0.01, 0.01]]))
    # 0.5 -> 0.005 over steps 10..20 is two decades; 0.05 is one decade in: step 15
    torch.testing.assert_close(tr.steps_to(0.05), torch.tensor([15.0, 30.0, 0.0], dtype=torch.float64))


def test_setup_file_loads_at_every_scale_and_rejects_typos(tmp_path) -> None:
    path = studies_dir() / "conv-filter.toml"
    for scale in ("smoke", "quick", "full"):
        assert load_setup(path, scale).trials >= 10
    bad = tmp_path / "c.toml"
    bad.write_text("[conv]\ntrails = 5\n[scales.quick]\n")
    with pytest.raises(ValueError, match="unknown key.*trails.*valid keys: trials"):
        load_setup(bad, "quick")
    with pytest.raises(ValueError, match="no \\[scales.full\\]"):
        load_setup(bad, "full")
    with pytest.raises(ValueError, match="strides must lie"):
        ConvSetup(filter_size=4, strides=(8,))
