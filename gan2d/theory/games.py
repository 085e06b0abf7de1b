"""Why GANs are hard, in toy games small enough to solve by hand.

Four exact experiments, all in plain numpy (no UI import):

1. The bilinear game min_x max_y x*y and five ways of stepping through it.
2. The Dirac-GAN of Mescheder, Geiger & Nowozin (2018), "Which training methods for GANs
   do actually converge?": one generator parameter, one critic parameter.
3. JS, KL, reverse KL and W1 between a distribution and a shifted copy of it, with the
   gradient a generator would receive (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN").
4. Fitting one Gaussian to two modes by forward KL (covers both) and reverse KL (picks one).

``gan2d.theory.run`` is the command-line entry point (``python -m gan2d theory``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize

LOG2 = math.log(2.0)

# ---------------------------------------------------------------------------------------
# 1. The xy game
# ---------------------------------------------------------------------------------------

XY_METHODS = ("simultaneous", "alternating", "extragradient", "optimistic", "consensus")


def xy_vector_field(x, y):
    """The descent/ascent direction of min_x max_y x*y: x moves along -y, y along +x."""
    return -y, x


def xy_trajectory(
    method: str,
    lr: float,
    steps: int,
    x0: float = 1.0,
    y0: float = 1.0,
    gamma: float = 1.0,
) -> np.ndarray:
    """Iterates of a first-order method on min_x max_y x*y, shape (steps + 1, 2).

    - simultaneous: both players step from the old point. The radius grows by exactly
      sqrt(1 + lr**2) per step, so the iterates spiral out.
    - alternating: x steps first and y answers the new x. The quadratic form
      x**2 + y**2 - lr*x*y is conserved exactly (see `xy_alternating_invariant`), so the
      iterates cycle on an ellipse for lr < 2: bounded, never converging.
    - extragradient (Korpelevich 1976): look ahead one step, then step from the old point
      with the look-ahead gradient. Contracts by sqrt(1 - lr**2 + lr**4) per step.
    - optimistic (OGDA; Daskalakis et al. 2018, "Training GANs with optimism"):
      z <- z + lr * (2 v(z_t) - v(z_{t-1})); the first step uses v(z_{-1}) = v(z_0).
    - consensus (Mescheder, Nowozin & Geiger 2017, "The numerics of GANs"): follow
      v - gamma * grad(|v|**2 / 2). Here |v|**2 / 2 = (x**2 + y**2) / 2, so each step also
      pulls the point towards the origin; contracts by sqrt((1 - lr*gamma)**2 + lr**2).
    """
    if method not in XY_METHODS:
        raise ValueError(f"unknown xy method {method!r}; choose one of {', '.join(XY_METHODS)}")
    x, y = float(x0), float(y0)
    out = np.empty((steps + 1, 2))
    out[0] = x, y
    prev_vx, prev_vy = xy_vector_field(x, y)
    for t in range(1, steps + 1):
        if method == "simultaneous":
            x, y = x - lr * y, y + lr * x
        elif method == "alternating":
            x = x - lr * y
            y = y + lr * x
        elif method == "extragradient":
            xh, yh = x - lr * y, y + lr * x
            x, y = x - lr * yh, y + lr * xh
        elif method == "optimistic":
            vx, vy = xy_vector_field(x, y)
            x, y = x + lr * (2 * vx - prev_vx), y + lr * (2 * vy - prev_vy)
            prev_vx, prev_vy = vx, vy
        else:  # consensus
            x, y = x + lr * (-y - gamma * x), y + lr * (x - gamma * y)
        out[t] = x, y
        if not (math.isfinite(x) and math.isfinite(y)):  # overflowed: the rest is undefined
            out[t:] = np.nan
            break
    return out


def xy_alternating_invariant(points: np.ndarray, lr: float) -> np.ndarray:
    """x**2 + y**2 - lr*x*y for each point: constant along alternating-update iterates.

    With x' = x - lr*y and y' = y + lr*x', expanding gives
    x'**2 + y'**2 - lr*x'*y' = x**2 + y**2 - lr*x*y, term by term.
    """
    x, y = points[..., 0], points[..., 1]
    return x**2 + y**2 - lr * x * y


def xy_growth_per_step(method: str, lr: float, gamma: float = 1.0) -> float:
    """Exact factor by which the distance to (0, 0) changes in one step.

    Simultaneous, extragradient and consensus steps multiply z = (x, y) by a scaled
    rotation, so every step changes |z| by the same factor. Alternating and optimistic
    steps do not (their matrices are not scaled rotations): ValueError for them.
    """
    if method == "simultaneous":
        return math.sqrt(1 + lr**2)
    if method == "extragradient":
        return math.sqrt((1 - lr**2) ** 2 + lr**2)
    if method == "consensus":
        return math.sqrt((1 - lr * gamma) ** 2 + lr**2)
    raise ValueError(f"{method!r} has no constant per-step growth factor")


def distance_to_origin(points: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point of a trajectory from the equilibrium (0, 0)."""
    return np.hypot(points[..., 0], points[..., 1])


def path_length(points: np.ndarray) -> float:
    """Total length of the polyline through the trajectory's points."""
    return float(np.sum(np.hypot(*np.diff(points, axis=0).T)))


# ---------------------------------------------------------------------------------------
# 2. Dirac-GAN
# ---------------------------------------------------------------------------------------

DIRAC_LOSSES = ("minimax", "ns", "wgan", "wgan-gp")
DIRAC_REGS = ("none", "r1", "instance_noise")
DIRAC_METHODS = ("simultaneous", "alternating")

# Probabilists' Gauss-Hermite rule: E[g(eps)], eps ~ N(0, 1), as a weighted sum.
_GH_NODES, _GH_WEIGHTS = hermegauss(64)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def sigmoid(t):
    """Logistic function, written to avoid overflow for large |t|."""
    t = np.asarray(t, dtype=float)
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _f_prime(loss: str, t):
    """f'(t) for the Dirac-GAN objective L = f(psi*theta) + f(0).

    Mescheder et al. (2018), eq. (3)-(4): f(t) = -log(1 + exp(-t)) for the original GAN,
    so f'(t) = sigmoid(-t); f(t) = t for the Wasserstein GAN, so f'(t) = 1.
    """
    if loss in ("wgan", "wgan-gp"):
        return np.ones_like(np.asarray(t, dtype=float))
    return sigmoid(-np.asarray(t, dtype=float))


def dirac_vector_field(
    theta,
    psi,
    loss: str = "minimax",
    reg: str = "none",
    reg_weight: float = 1.0,
    gp_weight: float = 1.0,
    gp_target: float = 1.0,
):
    """Gradient vector field (v_theta, v_psi) of the Dirac-GAN at (theta, psi).

    Mescheder, Geiger & Nowozin (2018): data is a Dirac at 0, the generator a Dirac at
    theta, the critic D(x) = psi*x. The game is L(theta, psi) = f(psi*theta) + f(0); the
    generator descends (v_theta = -dL/dtheta) and the critic ascends (v_psi = dL/dpsi).
    Its only equilibrium is (0, 0). Works elementwise on arrays (for grids).

    - loss "ns": the generator's non-saturating variant, v_theta = -psi * f'(-psi*theta).
    - loss "wgan-gp" (Gulrajani et al. 2017): the critic also minimises
      gp_weight/2 * (|D'(x)| - gp_target)**2 = gp_weight/2 * (|psi| - gp_target)**2.
    - reg "r1" (zero-centred penalty on real data): the critic minimises
      reg_weight/2 * psi**2, which adds -reg_weight*psi to v_psi.
    - reg "instance_noise" with std reg_weight: real and fake samples get N(0, std**2)
      noise, and the field is the exact expectation over it (64-point Gauss-Hermite).
      For a WGAN the field is linear in the sample, so the noise changes nothing.
    """
    theta = np.asarray(theta, dtype=float)
    psi = np.asarray(psi, dtype=float)
    ns = loss == "ns"
    if reg == "instance_noise" and reg_weight > 0 and loss not in ("wgan", "wgan-gp"):
        sd = reg_weight
        eps = _GH_NODES.reshape((-1,) + (1,) * theta.ndim)
        w = _GH_WEIGHTS.reshape(eps.shape)
        fake = theta + sd * eps
        real = sd * eps
        gen_arg = -psi * fake if ns else psi * fake
        v_theta = np.sum(w * (-psi * _f_prime(loss, gen_arg)), axis=0)
        v_psi = np.sum(
            w * (fake * _f_prime(loss, psi * fake) - real * _f_prime(loss, -psi * real)), axis=0
        )
    else:
        t = psi * theta
        gen_arg = -t if ns else t
        v_theta = -psi * _f_prime(loss, gen_arg)
        v_psi = theta * _f_prime(loss, t)
    if loss == "wgan-gp":
        v_psi = v_psi - gp_weight * (np.abs(psi) - gp_target) * np.sign(psi)
    if reg == "r1":
        v_psi = v_psi - reg_weight * psi
    return v_theta, v_psi


def dirac_trajectory(
    loss: str = "minimax",
    reg: str = "none",
    method: str = "simultaneous",
    lr: float = 0.1,
    steps: int = 1000,
    theta0: float = 1.0,
    psi0: float = 1.0,
    reg_weight: float = 1.0,
    gp_weight: float = 1.0,
    gp_target: float = 1.0,
    clip: float = 0.0,
) -> np.ndarray:
    """Gradient-descent iterates (theta, psi) of the Dirac-GAN, shape (steps + 1, 2).

    simultaneous: both players step from the old point. alternating: the generator steps
    first and the critic answers the new theta (the order of Mescheder et al.'s code).
    clip > 0 clips psi to [-clip, clip] after every step: WGAN weight clipping
    (Arjovsky et al. 2017), which keeps the critic 1-Lipschitz only for clip <= 1.
    """
    if loss not in DIRAC_LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(DIRAC_LOSSES)}")
    if reg not in DIRAC_REGS:
        raise ValueError(f"unknown reg {reg!r}; choose one of {', '.join(DIRAC_REGS)}")
    if method not in DIRAC_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(DIRAC_METHODS)}")

    def field(th, ps):
        vt, vp = dirac_vector_field(th, ps, loss, reg, reg_weight, gp_weight, gp_target)
        return float(vt), float(vp)

    def clipped(ps):
        return min(max(ps, -clip), clip) if clip > 0 else ps

    theta, psi = float(theta0), clipped(float(psi0))
    out = np.empty((steps + 1, 2))
    out[0] = theta, psi
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            if method == "simultaneous":
                vt, vp = field(theta, psi)
                theta, psi = theta + lr * vt, clipped(psi + lr * vp)
            else:
                theta = theta + lr * field(theta, psi)[0]
                psi = clipped(psi + lr * field(theta, psi)[1])
            out[t] = theta, psi
            if not (math.isfinite(theta) and math.isfinite(psi)):
                out[t:] = np.nan
                break
    return out


def vector_field_grid(
    field: Callable, lo: float = -2.0, hi: float = 2.0, n: int = 15
) -> dict[str, np.ndarray]:
    """A field sampled on an n x n grid over [lo, hi]^2: flat arrays x, y, u, v."""
    axis = np.linspace(lo, hi, n)
    gx, gy = np.meshgrid(axis, axis)
    u, v = field(gx, gy)
    return {"x": gx.ravel(), "y": gy.ravel(), "u": np.ravel(u), "v": np.ravel(v)}


# ---------------------------------------------------------------------------------------
# 3. Divergences between a distribution and a shifted copy
# ---------------------------------------------------------------------------------------

DIVERGENCE_PAIRS = ("parallel_lines", "gaussians")


def parallel_lines_divergences(shift: float) -> dict[str, float | None]:
    """JS, KL, reverse KL and W1 between P = {0} x U[0, 1] and Q = {shift} x U[0, 1].

    The example of Arjovsky, Chintala & Bottou (2017), "Wasserstein GAN", Example 1. For
    shift != 0 the supports do not meet: JS = log 2 whatever the shift (gradient 0: the
    generator learns nothing), both KLs are infinite (no gradient exists), while
    W1 = |shift| has gradient sign(shift). Gradients are None where they do not exist
    (infinite values, or the jump/kink at shift = 0). Values in nats.
    """
    s = float(shift)
    if s == 0.0:
        return {
            "js": 0.0,
            "kl": 0.0,
            "reverse_kl": 0.0,
            "w1": 0.0,
            "js_grad": None,
            "kl_grad": None,
            "reverse_kl_grad": None,
            "w1_grad": None,
        }
    return {
        "js": LOG2,
        "kl": math.inf,
        "reverse_kl": math.inf,
        "w1": abs(s),
        "js_grad": 0.0,
        "kl_grad": None,
        "reverse_kl_grad": None,
        "w1_grad": math.copysign(1, s),
    }


def _standard_normal_logpdf(u):
    return -0.5 * u**2 - 0.5 * math.log(2 * math.pi)


def gaussian_shift_js(shift: float, sigma: float = 1.0) -> tuple[float, float]:
    """JS(N(0, sigma^2) || N(shift, sigma^2)) in nats and its derivative in shift.

    No closed form exists; both are integrals of smooth, fast-decaying functions, computed
    with the trapezoid rule on a fine grid (error far below 1e-10). With p and q the two
    densities and m = (p + q)/2, d JS / d shift = 1/2 * integral of dq/dshift * log(q/m),
    because the other terms integrate to zero. JS tends to log 2 and its gradient to 0
    as the shift grows: the vanishing gradient of the original GAN (Arjovsky & Bottou 2017).
    """
    d = abs(float(shift)) / sigma
    if d > 40.0:  # the overlap is below exp(-200): JS is log 2 to machine precision
        return LOG2, 0.0
    u = np.arange(-14.0, d + 14.0 + 1e-9, 0.02)
    log_p = _standard_normal_logpdf(u)
    log_q = _standard_normal_logpdf(u - d)
    log_m = np.logaddexp(log_p, log_q) - LOG2
    p, q = np.exp(log_p), np.exp(log_q)
    js = 0.5 * np.trapezoid(p * (log_p - log_m), u) + 0.5 * np.trapezoid(q * (log_q - log_m), u)
    dq = q * (u - d)  # d q / d d, in units of sigma
    grad = 0.5 * np.trapezoid(dq * (log_q - log_m), u) / sigma
    js = min(max(float(js), 0.0), LOG2)
    return js, math.copysign(float(grad), shift) if shift != 0 else 0.0


def gaussians_divergences(shift: float, sigma: float = 1.0) -> dict[str, float | None]:
    """JS, KL, reverse KL and W1 between N(0, sigma^2) and N(shift, sigma^2), with gradients.

    Closed forms: KL = reverse KL = shift^2 / (2 sigma^2), gradient shift / sigma^2;
    W1 = |shift| (a translation moves every unit of mass by |shift|), gradient sign(shift),
    None at the kink shift = 0. JS comes from quadrature (`gaussian_shift_js`).
    """
    s = float(shift)
    js, js_grad = gaussian_shift_js(s, sigma)
    kl = s**2 / (2 * sigma**2)
    return {
        "js": js,
        "kl": kl,
        "reverse_kl": kl,
        "w1": abs(s),
        "js_grad": js_grad,
        "kl_grad": s / sigma**2,
        "reverse_kl_grad": s / sigma**2,
        "w1_grad": math.copysign(1.0, s) if s != 0 else None,
    }


def shifted_divergences(pair: str, shift: float, sigma: float = 1.0) -> dict[str, float | None]:
    """Divergences of a shifted copy, `pair` in DIVERGENCE_PAIRS."""
    if pair == "parallel_lines":
        return parallel_lines_divergences(shift)
    if pair == "gaussians":
        return gaussians_divergences(shift, sigma)
    raise ValueError(f"unknown pair {pair!r}; choose one of {', '.join(DIVERGENCE_PAIRS)}")


# ---------------------------------------------------------------------------------------
# 4. Forward vs reverse KL: one Gaussian fitted to two modes
# ---------------------------------------------------------------------------------------

KL_GRID = np.linspace(-12.0, 12.0, 6001)


def gaussian_logpdf(x, mu: float, sigma: float):
    """log N(x; mu, sigma^2)."""
    return _standard_normal_logpdf((np.asarray(x) - mu) / sigma) - np.log(sigma)


def mixture_logpdf(x, weights, means, stds):
    """log of sum_k weights[k] * N(x; means[k], stds[k]^2), computed stably."""
    x = np.asarray(x, dtype=float)[..., None]
    comps = np.log(np.asarray(weights)) + gaussian_logpdf(x, np.asarray(means), np.asarray(stds))
    return np.logaddexp.reduce(comps, axis=-1)


def kl_on_grid(log_a: np.ndarray, log_b: np.ndarray, x: np.ndarray = KL_GRID) -> float:
    """KL(a || b) = integral of a log(a / b), trapezoid rule on the grid x (nats)."""
    a = np.exp(log_a)
    return float(np.trapezoid(a * (log_a - log_b), x))


def moment_matched_gaussian(weights, means, stds) -> tuple[float, float]:
    """The forward-KL-optimal Gaussian for p: argmin over (mu, sigma) of KL(p || N).

    Minimising KL(p || q) over Gaussians q matches the first two moments:
    mu = E_p[x], sigma^2 = Var_p[x] (Bishop 2006, section 10.7). Returns (mu, sigma).
    """
    w, m, s = (np.asarray(a, dtype=float) for a in (weights, means, stds))
    w = w / w.sum()
    mu = float(np.sum(w * m))
    var = float(np.sum(w * (s**2 + m**2)) - mu**2)
    return mu, math.sqrt(var)


def fit_gaussian_kl(
    weights, means, stds, direction: str, mu0: float = 0.5, sigma0: float = 1.0
) -> tuple[float, float, float]:
    """Numerically fit N(mu, sigma^2) to a Gaussian mixture p; returns (mu, sigma, KL).

    direction "forward" minimises KL(p || q): q must cover all of p (mode covering).
    direction "reverse" minimises KL(q || p): q may ignore parts of p but must not put mass
    where p has none (mode seeking). Nelder-Mead over (mu, log sigma); the reverse problem
    has one minimum per mode, so the start mu0 decides which mode is found (a start at the
    symmetric point sits on a saddle).
    """
    if direction not in ("forward", "reverse"):
        raise ValueError(f"unknown direction {direction!r}; choose forward or reverse")
    log_p = mixture_logpdf(KL_GRID, weights, means, stds)

    def objective(params):
        mu, log_sigma = params
        log_q = gaussian_logpdf(KL_GRID, mu, math.exp(log_sigma))
        if direction == "forward":
            return kl_on_grid(log_p, log_q)
        return kl_on_grid(log_q, log_p)

    res = optimize.minimize(
        objective,
        x0=[mu0, math.log(sigma0)],
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000},
    )
    mu, log_sigma = res.x
    return float(mu), float(math.exp(log_sigma)), float(res.fun)


def kl_fits(
    mode_mean: float = 2.0, mode_std: float = 0.5, weight: float = 0.5, start: float = 0.5
) -> dict:
    """Forward- and reverse-KL Gaussian fits to p = (1-w) N(-m, s^2) + w N(m, s^2).

    Returns both fits, the closed-form (moment matching) forward fit, and all four
    divergences: each fit measured in the direction it optimised and in the other one.
    """
    weights, means, stds = [1 - weight, weight], [-mode_mean, mode_mean], [mode_std, mode_std]
    mm_mu, mm_sigma = moment_matched_gaussian(weights, means, stds)
    f_mu, f_sigma, f_kl = fit_gaussian_kl(weights, means, stds, "forward", mm_mu + 0.3, 1.0)
    r_mu, r_sigma, r_kl = fit_gaussian_kl(weights, means, stds, "reverse", start, 1.0)
    log_p = mixture_logpdf(KL_GRID, weights, means, stds)
    log_qf = gaussian_logpdf(KL_GRID, f_mu, f_sigma)
    log_qr = gaussian_logpdf(KL_GRID, r_mu, r_sigma)
    return {
        "mixture": {"weights": weights, "means": means, "stds": stds},
        "moment_matched": {"mu": mm_mu, "sigma": mm_sigma},
        "forward": {
            "mu": f_mu,
            "sigma": f_sigma,
            "kl": f_kl,
            "reverse_kl": kl_on_grid(log_qf, log_p),
        },
        "reverse": {
            "mu": r_mu,
            "sigma": r_sigma,
            "kl": kl_on_grid(log_p, log_qr),
            "reverse_kl": r_kl,
        },
    }


# ---------------------------------------------------------------------------------------
# 5. Command-line entry point
# ---------------------------------------------------------------------------------------


__all__ = [
    "DIRAC_LOSSES",
    "DIRAC_METHODS",
    "DIRAC_REGS",
    "DIVERGENCE_PAIRS",
    "KL_GRID",
    "LOG2",
    "XY_METHODS",
    "dirac_trajectory",
    "dirac_vector_field",
    "distance_to_origin",
    "fit_gaussian_kl",
    "gaussian_logpdf",
    "gaussian_shift_js",
    "gaussians_divergences",
    "kl_fits",
    "kl_on_grid",
    "mixture_logpdf",
    "moment_matched_gaussian",
    "parallel_lines_divergences",
    "path_length",
    "shifted_divergences",
    "sigmoid",
    "vector_field_grid",
    "xy_alternating_invariant",
    "xy_growth_per_step",
    "xy_trajectory",
    "xy_vector_field",
]
