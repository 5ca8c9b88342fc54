"""GLM families for the mixed-model fitters: link, variance, deviance residuals and the
log-likelihood, with the derivatives that the Laplace gradient needs.

A family is looked up by name (``family("binomial", link="probit")``) or passed as a
:class:`Family`. ``mu_eta`` is dmu/deta, ``mu_eta2`` its derivative; ``variance`` and
``variance_deriv`` are V(mu) and V'(mu). ``weights`` are prior weights (binomial trials).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import special, stats

Array = np.ndarray


@dataclass(frozen=True)
class Link:
    name: str
    linkfun: Callable[[Array], Array]
    linkinv: Callable[[Array], Array]
    mu_eta: Callable[[Array], Array]
    mu_eta2: Callable[[Array], Array]


_EPS = np.finfo(float).eps


def _clip(x, low, high):  # np.clip's wrapper costs more than the two ufuncs
    return np.minimum(np.maximum(x, low), high)


def _logit_inv(eta):
    return _clip(special.expit(eta), _EPS, 1 - _EPS)


def _logit_mu_eta(eta):
    mu = special.expit(eta)
    return np.maximum(mu * (1 - mu), _EPS)


def _logit_mu_eta2(eta):
    mu = special.expit(eta)
    return mu * (1 - mu) * (1 - 2 * mu)


def _cloglog_inv(eta):
    return _clip(-np.expm1(-np.exp(eta)), _EPS, 1 - _EPS)


def _cloglog_mu_eta(eta):
    eta = np.minimum(eta, 700)
    return np.maximum(np.exp(eta - np.exp(eta)), _EPS)


def _cloglog_mu_eta2(eta):
    eta = np.minimum(eta, 700)
    return np.exp(eta - np.exp(eta)) * (1 - np.exp(eta))


def _exp_capped(eta):
    return np.maximum(np.exp(np.minimum(eta, 700)), _EPS)


LINKS = {
    "logit": Link("logit", special.logit, _logit_inv, _logit_mu_eta, _logit_mu_eta2),
    "probit": Link("probit", stats.norm.ppf,
                   lambda eta: _clip(special.ndtr(eta), _EPS, 1 - _EPS),
                   lambda eta: np.maximum(stats.norm.pdf(eta), _EPS),
                   lambda eta: -eta * stats.norm.pdf(eta)),
    "cloglog": Link("cloglog", lambda mu: np.log(-np.log1p(-mu)), _cloglog_inv,
                    _cloglog_mu_eta, _cloglog_mu_eta2),
    "log": Link("log", np.log, _exp_capped, _exp_capped, _exp_capped),
    "identity": Link("identity", lambda mu: mu, lambda eta: eta, np.ones_like,
                     np.zeros_like),
    "inverse": Link("inverse", lambda mu: 1 / mu, lambda eta: 1 / eta,
                    lambda eta: -1 / eta**2, lambda eta: 2 / eta**3),
}


@dataclass(frozen=True)
class Family:
    """One exponential family with its link; ``dispersion`` is fixed at 1 here except
    for the negative binomial's ``theta`` (a known shape, as ``MASS::negative.binomial``)."""

    name: str
    link: Link
    variance: Callable[[Array], Array]
    variance_deriv: Callable[[Array], Array]
    dev_resid: Callable[[Array, Array, Array], Array]
    loglik: Callable[[Array, Array, Array], float]  # sum of log p(y | mu)
    canonical: str
    theta: float | None = None

    @property
    def is_canonical(self) -> bool:
        return self.link.name == self.canonical

    def __str__(self) -> str:
        if self.name == "negative binomial":
            return f"Negative Binomial({self.theta:g})  ( {self.link.name} )"
        return f"{self.name}  ( {self.link.name} )"


def _binomial_dev(y, mu, w):
    return 2 * w * (special.xlogy(y, y) - special.xlogy(y, mu)
                    + special.xlogy(1 - y, 1 - y) - special.xlogy(1 - y, 1 - mu))


def _binomial_loglik(y, mu, w):
    trials = np.rint(w)
    successes = np.rint(w * y)
    return float(np.sum(stats.binom.logpmf(successes, trials, mu)))


def _poisson_dev(y, mu, w):
    return 2 * w * (special.xlogy(y, y / mu) - (y - mu))


def _poisson_loglik(y, mu, w):
    return float(np.sum(w * stats.poisson.logpmf(y, mu)))


def _gamma_dev(y, mu, w):
    return -2 * w * (np.log(y / mu) - (y - mu) / mu)


def _gamma_loglik(y, mu, w):
    """The weights are the shapes (``w / dispersion`` in a fit with a dispersion)."""
    return float(np.sum(stats.gamma.logpdf(y, w, scale=mu / w)))


def _negbin(theta: float, link: Link) -> Family:
    def dev(y, mu, w):
        return 2 * w * (special.xlogy(y, y / mu)
                        - (y + theta) * np.log((y + theta) / (mu + theta)))

    def loglik(y, mu, w):
        return float(np.sum(w * stats.nbinom.logpmf(y, theta, theta / (theta + mu))))

    return Family("negative binomial", link, lambda mu: mu + mu**2 / theta,
                  lambda mu: 1 + 2 * mu / theta, dev, loglik, "", theta)


_DEFAULT_LINK = {"binomial": "logit", "poisson": "log", "gamma": "inverse",
                 "negative_binomial": "log"}
_ALLOWED_LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",),
                  "gamma": ("inverse", "log", "identity"), "negative_binomial": ("log",)}


def family_key(name: str) -> str:
    """The family's key: "binomial", "poisson", "gamma" or "negative_binomial"."""
    key = name.lower().replace(" ", "_").replace(".", "_")
    return "negative_binomial" if key == "negbin" else key


def family(name: str | Family, link: str | None = None, theta: float | None = None) -> Family:
    """The family called ``name`` ("binomial", "poisson", "Gamma", "negative_binomial")
    with ``link`` (its canonical link by default). ``theta`` is the negative binomial's
    shape (variance mu + mu^2/theta); ``glmer`` estimates it when it is not given."""
    if isinstance(name, Family):
        return name
    key = family_key(name)
    if key not in _DEFAULT_LINK:
        raise ValueError(f"unknown family {name!r}; use one of binomial, poisson, Gamma, "
                         "negative_binomial")
    link = link or _DEFAULT_LINK[key]
    if link not in _ALLOWED_LINKS[key]:
        raise ValueError(f"the {name} family takes the links {', '.join(_ALLOWED_LINKS[key])}, "
                         f"not {link!r}")
    chosen = LINKS[link]
    if key == "binomial":
        return Family("binomial", chosen, lambda mu: mu * (1 - mu), lambda mu: 1 - 2 * mu,
                      _binomial_dev, _binomial_loglik, "logit")
    if key == "poisson":
        return Family("poisson", chosen, lambda mu: mu, np.ones_like, _poisson_dev,
                      _poisson_loglik, "log")
    if key == "gamma":
        return Family("Gamma", chosen, lambda mu: mu**2, lambda mu: 2 * mu, _gamma_dev,
                      _gamma_loglik, "inverse")
    if theta is None or not theta > 0:
        raise ValueError("the negative binomial family needs its shape: theta > 0")
    return _negbin(float(theta), chosen)


def check_response(fam: Family, y: Array, weights: Array) -> None:
    """Refuse responses outside the family's support, saying what is wrong."""
    if fam.name == "binomial":
        if np.any((y < 0) | (y > 1)):
            raise ValueError("binomial response must be a proportion in [0, 1] (with the "
                             "trials as weights) or cbind(successes, failures); some "
                             "successes exceed the trials or are negative")
        successes = y * weights
        if not np.allclose(successes, np.rint(successes), atol=1e-7):
            raise ValueError("binomial successes (proportion x trials) must be whole "
                             "numbers; check the response and the weights")
    elif fam.name in ("poisson", "negative binomial"):
        if np.any(y < 0):
            raise ValueError(f"{fam.name} counts must be non-negative; found "
                             f"{int(np.sum(y < 0))} negative values")
        if not np.allclose(y, np.rint(y)):
            raise ValueError(f"{fam.name} counts must be whole numbers; found non-integer "
                             "values (for rates, model the count with offset(log(exposure)))")
    elif fam.name == "Gamma" and np.any(y <= 0):
        raise ValueError("Gamma response must be positive")


def start_mu(fam: Family, y: Array, weights: Array) -> Array:
    """R's ``mustart``: the data pulled away from the boundary."""
    if fam.name == "binomial":
        return (weights * y + 0.5) / (weights + 1)
    if fam.name in ("poisson", "negative binomial"):
        return y + 0.1
    return y
