"""Exact numbers for the toy games in gan2d.theory, checked against hand derivations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gan2d import theory

LOG2 = math.log(2.0)


# ------------------------------------------------------------------------- xy game


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.3])
def test_simultaneous_radius_grows_by_exactly_sqrt_1_plus_lr_squared(lr):
    pts = theory.xy_trajectory("simultaneous", lr, 200, x0=0.7, y0=-1.3)
    r = theory.distance_to_origin(pts)
    np.testing.assert_allclose(r[1:] / r[:-1], math.sqrt(1 + lr**2), rtol=1e-12, atol=0)


@pytest.mark.parametrize("lr", [0.1, 0.5, 1.5])
def test_alternating_conserves_a_quadratic_form_and_never_settles(lr):
    pts = theory.xy_trajectory("alternating", lr, 10_000)
    q = theory.xy_alternating_invariant(pts, lr)
    np.testing.assert_allclose(q, q[0], rtol=1e-9)
    # x^2 + y^2 - lr*x*y lies between (1 -+ lr/2)(x^2 + y^2): an ellipse around (0, 0).
    r2 = theory.distance_to_origin(pts) ** 2
    assert r2.max() <= q[0] / (1 - lr / 2) * (1 + 1e-9)
    assert r2.min() >= q[0] / (1 + lr / 2) * (1 - 1e-9)


@pytest.mark.parametrize("method", ["extragradient", "consensus"])
def test_extragradient_and_consensus_contract_at_their_exact_rate(method):
    lr = 0.2
    pts = theory.xy_trajectory(method, lr, 100, gamma=1.0)
    r = theory.distance_to_origin(pts)
    rate = theory.xy_growth_per_step(method, lr, gamma=1.0)
    assert rate < 1
    np.testing.assert_allclose(r[1:] / r[:-1], rate, rtol=1e-12)


@pytest.mark.parametrize("method", ["extragradient", "optimistic", "consensus"])
def test_fixes_reach_the_equilibrium_while_simultaneous_flees(method):
    fixed = theory.distance_to_origin(theory.xy_trajectory(method, 0.1, 2000))
    plain = theory.distance_to_origin(theory.xy_trajectory("simultaneous", 0.1, 2000))
    assert fixed[-1] < 1e-3 * fixed[0]
    assert plain[-1] > 1e4 * plain[0]


# ------------------------------------------------------------------------- Dirac-GAN


def _final_distance(**kw) -> float:
    return float(theory.distance_to_origin(theory.dirac_trajectory(**kw))[-1])


@pytest.mark.parametrize("loss", ["minimax", "ns", "wgan"])
def test_unregularised_simultaneous_training_does_not_converge(loss):
    start = math.hypot(1.0, 1.0)
    final = _final_distance(loss=loss, method="simultaneous", steps=3000)
    assert final > 0.3 * start  # ns settles on a cycle of radius ~0.45; the others grow
    if loss != "ns":
        assert final > start


def test_wgan_dirac_is_exactly_the_xy_game():
    """For f(t) = t the Dirac-GAN field is (-psi, theta): the xy game with x = theta."""
    for method in ("simultaneous", "alternating"):
        dirac = theory.dirac_trajectory(loss="wgan", method=method, lr=0.1, steps=500)
        xy = theory.xy_trajectory(method, 0.1, 500)
        np.testing.assert_allclose(dirac, xy, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", ["minimax", "wgan"])
def test_unregularised_alternating_training_orbits(loss):
    pts = theory.dirac_trajectory(loss=loss, method="alternating", steps=10_000)
    d = theory.distance_to_origin(pts)
    assert 0.9 * d[0] < d.min() and d.max() < 1.1 * d[0]


def test_ns_alternating_only_creeps_towards_the_equilibrium():
    """Linearised at (0, 0) the game is a pure rotation; only a quartic term pulls inward."""
    crawl = _final_distance(loss="ns", method="alternating", steps=10_000)
    r1 = _final_distance(loss="ns", method="alternating", steps=1000, reg="r1")
    assert crawl > 0.05
    assert r1 < 1e-10


@pytest.mark.parametrize("loss", ["minimax", "ns", "wgan"])
@pytest.mark.parametrize("method", ["simultaneous", "alternating"])
def test_r1_penalty_converges(loss, method):
    assert _final_distance(loss=loss, method=method, reg="r1", reg_weight=1.0) < 1e-8


@pytest.mark.parametrize("loss", ["minimax", "ns"])
def test_instance_noise_converges(loss):
    assert _final_distance(loss=loss, reg="instance_noise", reg_weight=1.0) < 1e-6


def test_instance_noise_cannot_help_a_wgan():
    plain = theory.dirac_trajectory(loss="wgan", steps=300)
    noisy = theory.dirac_trajectory(loss="wgan", steps=300, reg="instance_noise", reg_weight=1.0)
    np.testing.assert_array_equal(plain, noisy)


def test_wgan_gp_pushes_the_critic_off_the_equilibrium():
    # At theta = 0 the penalty (|psi| - 1)^2 drives psi to +-1, so (0, 0) cannot attract.
    _, v_psi = theory.dirac_vector_field(0.0, np.array([1e-6, -1e-6]), loss="wgan-gp")
    np.testing.assert_allclose(v_psi, [1.0, -1.0], atol=1e-5)
    for method in ("simultaneous", "alternating"):
        d = theory.distance_to_origin(
            theory.dirac_trajectory(loss="wgan-gp", method=method, steps=5000)
        )
        assert d[-1000:].min() > 0.5


def _jacobian_at_equilibrium(**kw) -> np.ndarray:
    h = 1e-6
    cols = []
    for dt, dp in ((h, 0.0), (0.0, h)):
        plus = np.array(theory.dirac_vector_field(dt, dp, **kw), dtype=float)
        minus = np.array(theory.dirac_vector_field(-dt, -dp, **kw), dtype=float)
        cols.append((plus - minus) / (2 * h))
    return np.array(cols).T


def test_jacobian_eigenvalues_match_mescheder_et_al():
    # Unregularised: +-f'(0) i = +-i/2, on the imaginary axis (Lemma 2.2).
    eig = np.linalg.eigvals(_jacobian_at_equilibrium(loss="minimax"))
    np.testing.assert_allclose(sorted(eig.imag), [-0.5, 0.5], atol=1e-8)
    np.testing.assert_allclose(eig.real, 0.0, atol=1e-8)
    # R1 weight g: lambda^2 + g*lambda + 1/4 = 0.
    g = 0.6
    eig = np.linalg.eigvals(_jacobian_at_equilibrium(loss="minimax", reg="r1", reg_weight=g))
    expected = np.roots([1.0, g, 0.25])
    np.testing.assert_allclose(sorted(eig, key=np.imag), sorted(expected, key=np.imag), atol=1e-7)
    # Instance noise std s: f''(0) s^2 +- sqrt(f''(0)^2 s^4 - f'(0)^2), f''(0) = -1/4.
    s = 0.8
    eig = np.linalg.eigvals(
        _jacobian_at_equilibrium(loss="minimax", reg="instance_noise", reg_weight=s)
    )
    expected = -0.25 * s**2 + np.emath.sqrt(0.0625 * s**4 - 0.25) * np.array([1, -1])
    np.testing.assert_allclose(sorted(eig, key=np.imag), sorted(expected, key=np.imag), atol=1e-6)


def test_vector_field_grid_shape_and_values():
    grid = theory.vector_field_grid(lambda x, y: (-y, x), -1.0, 1.0, 5)
    assert grid["x"].shape == (25,)
    np.testing.assert_array_equal(grid["u"], -grid["y"])


# ------------------------------------------------------------------------- divergences


@pytest.mark.parametrize("shift", [0.01, 0.5, -3.0, 100.0])
def test_disjoint_parallel_lines_js_is_log2_with_zero_gradient(shift):
    d = theory.parallel_lines_divergences(shift)
    assert d["js"] == LOG2 and d["js_grad"] == 0.0
    assert d["kl"] == math.inf and d["reverse_kl"] == math.inf
    assert d["kl_grad"] is None
    assert d["w1"] == abs(shift) and d["w1_grad"] == math.copysign(1.0, shift)


def test_identical_parallel_lines_have_zero_divergence():
    d = theory.parallel_lines_divergences(0.0)
    assert (d["js"], d["kl"], d["reverse_kl"], d["w1"]) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("shift,sigma", [(0.3, 0.5), (2.0, 0.5), (-1.5, 2.0)])
def test_gaussian_kl_and_w1_closed_forms(shift, sigma):
    d = theory.gaussians_divergences(shift, sigma)
    assert d["kl"] == pytest.approx(shift**2 / (2 * sigma**2), rel=1e-15)
    assert d["reverse_kl"] == d["kl"]
    assert d["kl_grad"] == pytest.approx(shift / sigma**2, rel=1e-15)
    assert d["w1"] == abs(shift) and d["w1_grad"] == math.copysign(1.0, shift)


def test_gaussian_js_small_shift_matches_second_order_expansion():
    # JS ~ chi^2 / 8 and chi^2(N(0,1), N(d,1)) = exp(d^2) - 1 ~ d^2.
    js, _ = theory.gaussian_shift_js(0.01, 1.0)
    assert js == pytest.approx(0.01**2 / 8, rel=1e-3)


def test_gaussian_js_gradient_matches_finite_differences():
    for s in (0.3, 1.0, 2.5, -0.8):
        h = 1e-5
        fd = (theory.gaussian_shift_js(s + h, 0.5)[0] - theory.gaussian_shift_js(s - h, 0.5)[0]) / (
            2 * h
        )
        assert theory.gaussian_shift_js(s, 0.5)[1] == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_gaussian_js_saturates_at_log2_and_its_gradient_vanishes():
    shifts = np.linspace(0.0, 10.0, 101)
    js = np.array([theory.gaussian_shift_js(s, 1.0)[0] for s in shifts])
    assert np.all(np.diff(js) > 0) and np.all(js <= LOG2)
    far = theory.gaussians_divergences(20.0, 1.0)
    assert far["js"] == pytest.approx(LOG2, abs=1e-12)
    assert abs(far["js_grad"]) < 1e-12
    assert far["w1_grad"] == 1.0 and far["kl_grad"] == 20.0


# ------------------------------------------------------------------------- KL fits


def test_forward_kl_fit_is_moment_matching_and_reverse_fit_picks_a_mode():
    fits = theory.kl_fits(mode_mean=2.0, mode_std=0.5, weight=0.5, start=0.5)
    fwd, rev = fits["forward"], fits["reverse"]
    assert fits["moment_matched"]["mu"] == 0.0
    assert fits["moment_matched"]["sigma"] ** 2 == pytest.approx(0.25 + 4.0, rel=1e-12)
    assert fwd["mu"] == pytest.approx(0.0, abs=1e-5)
    assert fwd["sigma"] ** 2 == pytest.approx(4.25, rel=1e-5)
    assert abs(rev["mu"]) == pytest.approx(2.0, abs=0.01)
    assert rev["sigma"] == pytest.approx(0.5, abs=0.01)
    # Sitting on one of two well-separated equal modes costs log 2 in reverse KL.
    assert rev["reverse_kl"] == pytest.approx(LOG2, abs=1e-3)
    # Each fit is worse than the other on the divergence it did not optimise.
    assert fwd["kl"] < rev["kl"] and rev["reverse_kl"] < fwd["reverse_kl"]


def test_moment_matching_with_unequal_weights():
    mu, sigma = theory.moment_matched_gaussian([0.7, 0.3], [-2.0, 2.0], [0.5, 0.5])
    assert mu == pytest.approx(-0.8)
    assert sigma**2 == pytest.approx(0.25 + 4.0 - 0.64)
    fit_mu, fit_sigma, _ = theory.fit_gaussian_kl([0.7, 0.3], [-2.0, 2.0], [0.5, 0.5], "forward")
    assert (fit_mu, fit_sigma) == pytest.approx((mu, sigma), abs=1e-5)


# ------------------------------------------------------------------------- run_theory


def test_run_theory_xy_reports_exact_distances_as_plain_json():
    out = theory.run_theory("xy", {"lr": "0.1", "steps": "50"})
    json.dumps(out, allow_nan=False)
    assert out["config"]["method"] == "simultaneous" and out["n_points"] == 51
    assert out["initial_distance"] == pytest.approx(math.sqrt(2), rel=1e-15)
    assert out["final_distance"] == pytest.approx(math.sqrt(2) * 1.01**25, rel=1e-12)
    assert out["distance_at_steps"][0] == 0 and out["distance_at_steps"][-1] == 50
    assert out["path_length"] > 0


def test_run_theory_dirac_and_overflow_are_json_safe():
    r1 = theory.run_theory("dirac", {"loss": "ns", "reg": "r1", "reg_weight": "0.5"})
    assert r1["final_distance"] < 1e-6 and r1["config"]["reg_weight"] == 0.5
    blown = theory.run_theory("xy", {"lr": "2", "steps": "100000"})
    json.dumps(blown, allow_nan=False)
    assert blown["diverged"] is True and blown["final_distance"] == "inf"


def test_run_theory_divergences_and_klfit():
    lines = theory.run_theory("divergences", {"kind": "parallel_lines", "shift": "3"})
    assert lines["js"] == LOG2 and lines["kl"] == "inf" and lines["kl_grad"] is None
    assert lines["w1"] == 3.0
    gauss = theory.run_theory("divergences", {"shift": "1", "sigma": "0.5"})
    assert gauss["kl"] == pytest.approx(2.0)
    fit = theory.run_theory("klfit", {})
    json.dumps(fit, allow_nan=False)
    assert abs(fit["reverse"]["mu"]) == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(
    "kind,overrides,words",
    [
        ("xy", {"speed": "1"}, ["unknown key 'speed'", "known keys:", "lr", "method"]),
        ("xy", {"method": "adam"}, ["method", "'adam'", "simultaneous", "consensus"]),
        ("xy", {"lr": "-0.1"}, ["lr=-0.1", "0 < lr"]),
        ("dirac", {"lr": "fast"}, ["lr", "'fast'", "not a number"]),
        ("dirac", {"steps": "2.5"}, ["steps", "'2.5'", "whole number"]),
        ("dirac", {"reg_weight": "nan"}, ["reg_weight", "'nan'", "finite"]),
        ("dirac", {"loss": "lsgan"}, ["loss", "'lsgan'", "wgan-gp"]),
        ("divergences", {"kind": "circles"}, ["kind", "'circles'", "parallel_lines"]),
        ("zz", {}, ["unknown theory kind 'zz'", "xy", "dirac", "divergences"]),
    ],
)
def test_run_theory_rejects_bad_input_with_a_clear_message(kind, overrides, words):
    with pytest.raises(ValueError) as err:
        theory.run_theory(kind, overrides)
    for word in words:
        assert word in str(err.value)


# ------------------------------------------------------------------------- the tab


def test_theory_tab_updates_sources_in_place():
    pn = pytest.importorskip("panel")
    from gan2d.ui.theory import TheoryLab, theory_view

    lab = TheoryLab()
    view = theory_view(lab)
    path = lab.sources["dirac_path"]
    before = np.array(path.data["x"])
    figures_before = {id(f) for figs in lab.figures.values() for f in figs}

    select = [w for w in view.select(pn.widgets.Select) if w.name == "Regulariser"]
    assert len(select) == 1
    select[0].value = "r1"  # what a user does in the browser
    assert lab.dirac_reg == "r1"
    assert lab.sources["dirac_path"] is path
    after = np.array(path.data["x"])
    assert abs(before[-1]) > 0.1 and abs(after[-1]) < 1e-6

    marks = np.array(lab.sources["div_marks"].data["s"])
    lab.div_shift = -1.5
    assert np.all(np.array(lab.sources["div_marks"].data["s"]) == -1.5) and marks[0] != -1.5
    assert {id(f) for figs in lab.figures.values() for f in figs} == figures_before
