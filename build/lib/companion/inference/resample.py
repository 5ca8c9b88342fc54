"""Responses drawn from a fitted mixed model (lme4's ``simulate``).

An LMM: the fixed part, random effects ``b = Lambda u`` with ``u ~ N(0, sigma^2 I)`` (or
the fit's own conditional modes), and residuals ``N(0, sigma^2 / w)``; an ``offset`` is
added back. A GLMM: ``b = Lambda u`` with ``u ~ N(0, I)`` (or the modes), the mean
``mu = g^-1(offset + X beta + Z b)``, and the response drawn from the family: a
binomial's successes out of its trials (returned as proportions, the model's scale), a
Poisson count."""

from __future__ import annotations

import numpy as np


def simulate_lmm(deviance, theta: np.ndarray, beta: np.ndarray, sigma: float, nsim: int,
                 seed=None, use_u: bool = False) -> np.ndarray:
    """``n x nsim`` simulated responses of the LMM whose profiled ``deviance`` was fitted
    at ``theta``, with fixed effects ``beta`` and residual SD ``sigma``."""
    if not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, not {nsim!r}")
    rng = np.random.default_rng(seed)
    design = deviance.design
    fixed = design.offset + design.X @ beta
    templates = deviance.layout.templates(np.asarray(theta, dtype=float))
    modes = deviance.solve(theta).b if use_u else None
    out = np.empty((design.n, nsim))
    for k in range(nsim):
        if use_u:
            b = modes
        else:  # b = Lambda u, term by term: each level's u times the term's template
            b = np.concatenate([
                (sigma * rng.standard_normal((block.n_levels, block.n_columns)) @ T.T).ravel()
                for block, T in zip(design.blocks, templates)])
        noise = sigma * rng.standard_normal(design.n) / np.sqrt(design.weights)
        out[:, k] = fixed + deviance.random_part(b) + noise
    return out


def simulate_response(fit, nsim: int, seed=None, use_u: bool = False) -> np.ndarray:
    """``n x nsim`` responses drawn from an lmer fit or a binomial or Poisson glmer fit."""
    from companion.engine.laplace import LaplaceDeviance
    from companion.engine.profiled import ProfiledDeviance

    theta, beta = fit.theta.to_numpy(), fit.fixef.to_numpy()
    if isinstance(fit.devfun, ProfiledDeviance):
        return simulate_lmm(fit.devfun, theta, beta, fit.sigma, nsim, seed, use_u)
    if isinstance(fit.devfun, LaplaceDeviance) and fit.refitter is not None:
        return simulate_glmm(fit.devfun, np.r_[theta, beta], nsim, seed, use_u)
    raise ValueError("simulate is available for lmer fits and for binomial or Poisson "
                     "glmer fits (Laplace or quadrature)")


def simulate_glmm(deviance, phi: np.ndarray, nsim: int, seed=None,
                  use_u: bool = False) -> np.ndarray:
    """``n x nsim`` simulated responses of the binomial or Poisson GLMM whose Laplace
    ``deviance`` was fitted at ``phi = (theta, beta)``."""
    if not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, not {nsim!r}")
    design, fam = deviance.design, deviance.family
    draw = _family_draw(fam.name, design.weights)
    rng = np.random.default_rng(seed)
    theta, beta = deviance.split(phi)
    fixed = design.offset + design.X @ beta
    templates = deviance.layout.templates(theta)
    modes = deviance.random_effects(deviance.solve(phi)) if use_u else None
    out = np.empty((design.n, nsim))
    for k in range(nsim):
        if use_u:
            b = modes
        else:
            b = np.concatenate([(rng.standard_normal((block.n_levels, block.n_columns))
                                 @ T.T).ravel() for block, T in zip(design.blocks, templates)])
        mu = fam.link.linkinv(fixed + random_part(design.blocks, b))
        out[:, k] = draw(rng, mu)
    return out


def random_part(blocks, b: np.ndarray) -> np.ndarray:
    """``Z b``, term by term, without forming ``Z``."""
    total, at = 0.0, 0
    for block in blocks:
        values = b[at:at + block.size].reshape(block.n_levels, block.n_columns)
        total = total + np.einsum("ij,ij->i", block.raw, values[block.codes])
        at += block.size
    return total


def _family_draw(name: str, weights: np.ndarray):
    """A draw of the response given ``mu``, on the model's scale."""
    if name == "poisson":
        return lambda rng, mu: rng.poisson(mu).astype(float)
    if name == "binomial":
        trials = np.rint(weights)
        if not np.allclose(trials, weights):
            raise ValueError("simulating a binomial response needs whole numbers of "
                             "trials; this model's weights are not counts")
        return lambda rng, mu: rng.binomial(trials.astype(np.int64), mu) / trials
    raise ValueError(f"simulate is available for LMMs and binomial or Poisson GLMMs, "
                     f"not the {name} family")
