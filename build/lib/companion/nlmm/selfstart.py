"""Self-starting nonlinear models, as R's ``SSasymp``, ``SSmicmen`` and ``SSlogis``: each
gives the model's value, its gradient in the parameters, and starting values found from
the data alone.

The starting values profile out the parameters the model is linear in (R's ``plinear``
idea): for ``SSasymp`` the asymptote and the value at zero given the log rate, for
``SSmicmen`` ``Vm`` given ``K``; ``SSlogis`` starts from the straight line through the
logits of the rescaled response. More models: build a :class:`SelfStart` and
:func:`register` it.

A formula names the model and its arguments: ``height ~ SSasymp(age, Asym, R0, lrc)``;
:func:`parse_nonlinear` reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import optimize

Array = np.ndarray


@dataclass(frozen=True)
class SelfStart:
    """A nonlinear model of one covariate: ``value(x, p)``, ``gradient(x, p)`` (rows x
    parameters) and ``initial(x, y)``, with ``p`` in the order of ``parameters``."""

    name: str
    parameters: tuple[str, ...]
    value: Callable[[Array, Array], Array]
    gradient: Callable[[Array, Array], Array]
    initial: Callable[[Array, Array], Array]
    equation: str


REGISTRY: dict[str, SelfStart] = {}


def register(model: SelfStart) -> SelfStart:
    """Make ``model`` usable by name in formulas."""
    REGISTRY[model.name] = model
    return model


def _sorted_means(x: Array, y: Array) -> tuple[Array, Array]:
    """R's ``sortedXyData``: the mean response at each distinct covariate value."""
    values, index = np.unique(x, return_inverse=True)
    return values, np.bincount(index, weights=y) / np.bincount(index)


def _linear_profile(columns: Callable[[float], Array], y: Array):
    """For a model linear in some parameters given one other, ``t -> (rss, coef)``."""
    def fit(t: float):
        A = columns(t)  # noqa: N806
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return float(np.sum((y - A @ coef) ** 2)), coef
    return fit


# --- SSasymp: Asym + (R0 - Asym) exp(-exp(lrc) x) ------------------------------------------

def _asymp_value(x, p):
    asym, r0, lrc = p
    return asym + (r0 - asym) * np.exp(-np.exp(lrc) * x)


def _asymp_gradient(x, p):
    asym, r0, lrc = p
    e = np.exp(-np.exp(lrc) * x)
    return np.column_stack([1 - e, e, -(r0 - asym) * np.exp(lrc) * x * e])


def _asymp_initial(x, y):
    xs, ys = _sorted_means(x, y)
    if len(xs) < 3:
        raise ValueError("SSasymp needs at least 3 distinct covariate values to start")
    profile = _linear_profile(
        lambda lrc: np.column_stack([1 - np.exp(-np.exp(lrc) * xs), np.exp(-np.exp(lrc) * xs)]),
        ys)
    span = np.log(1 / np.ptp(xs))  # rates around 1 / range of x
    best = optimize.minimize_scalar(lambda t: profile(t)[0], bounds=(span - 6, span + 6),
                                    method="bounded", options={"xatol": 1e-8})
    asym, r0 = profile(best.x)[1]
    return np.array([asym, r0, best.x])


SSasymp = register(SelfStart(
    "SSasymp", ("Asym", "R0", "lrc"), _asymp_value, _asymp_gradient, _asymp_initial,
    r"\mathrm{Asym} + (\mathrm{R0} - \mathrm{Asym})\,e^{-e^{\mathrm{lrc}}\,x}"))


# --- SSmicmen: Vm x / (K + x) ----------------------------------------------------------------

def _micmen_value(x, p):
    vm, k = p
    return vm * x / (k + x)


def _micmen_gradient(x, p):
    vm, k = p
    return np.column_stack([x / (k + x), -vm * x / (k + x) ** 2])


def _micmen_initial(x, y):
    xs, ys = _sorted_means(x, y)
    if len(xs) < 3:
        raise ValueError("SSmicmen needs at least 3 distinct covariate values to start")
    profile = _linear_profile(lambda log_k: (xs / (np.exp(log_k) + xs))[:, None], ys)
    centre = np.log(np.median(xs[xs > 0]))
    best = optimize.minimize_scalar(lambda t: profile(t)[0], bounds=(centre - 10, centre + 10),
                                    method="bounded", options={"xatol": 1e-8})
    return np.array([profile(best.x)[1][0], np.exp(best.x)])


SSmicmen = register(SelfStart(
    "SSmicmen", ("Vm", "K"), _micmen_value, _micmen_gradient, _micmen_initial,
    r"\frac{\mathrm{Vm}\,x}{\mathrm{K} + x}"))


# --- SSlogis: Asym / (1 + exp((xmid - x) / scal)) ----------------------------------------

def _logis_value(x, p):
    asym, xmid, scal = p
    return asym / (1 + np.exp((xmid - x) / scal))


def _logis_gradient(x, p):
    asym, xmid, scal = p
    e = np.exp((xmid - x) / scal)
    d = asym * e / (1 + e) ** 2
    return np.column_stack([1 / (1 + e), -d / scal, d * (xmid - x) / scal**2])


def _logis_initial(x, y):
    xs, ys = _sorted_means(x, y)
    if len(xs) < 4:
        raise ValueError("SSlogis needs at least 4 distinct covariate values to start")
    low, span = ys.min(), np.ptp(ys)
    z = (ys - low + 0.05 * span) / (1.1 * span)  # R's rescaling into (0, 1)
    slope, intercept = np.polyfit(np.log(z / (1 - z)), xs, 1)  # x = xmid + scal * logit(z)
    return np.array([1.1 * span + low, intercept, slope])


SSlogis = register(SelfStart(
    "SSlogis", ("Asym", "xmid", "scal"), _logis_value, _logis_gradient, _logis_initial,
    r"\frac{\mathrm{Asym}}{1 + e^{(\mathrm{xmid} - x)/\mathrm{scal}}}"))


# --- formulas --------------------------------------------------------------------------------

_CALL = re.compile(r"^\s*([\w.]+)\s*~\s*(\w+)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class NonlinearFormula:
    """``response ~ Model(covariate, p1, p2, ...)``, with the user's parameter names."""

    response: str
    model: SelfStart
    covariate: str
    parameters: tuple[str, ...]


def parse_nonlinear(formula: str) -> NonlinearFormula:
    """Read ``"height ~ SSasymp(age, Asym, R0, lrc)"``."""
    match = _CALL.match(formula)
    if not match:
        raise ValueError(f"{formula!r} is not of the form 'y ~ Model(x, p1, p2, ...)', "
                         f"e.g. 'height ~ SSasymp(age, Asym, R0, lrc)'")
    response, name, inside = match.groups()
    if name not in REGISTRY:
        raise ValueError(f"unknown self-starting model {name!r}; known: "
                         f"{', '.join(sorted(REGISTRY))} (add one with selfstart.register)")
    model = REGISTRY[name]
    args = [a.strip() for a in inside.split(",")]
    if len(args) != 1 + len(model.parameters) or not all(args):
        raise ValueError(f"{name} takes the covariate and {len(model.parameters)} parameter "
                         f"names, as {name}(x, {', '.join(model.parameters)}); got "
                         f"{name}({inside})")
    if len(set(args[1:])) != len(args) - 1:
        raise ValueError(f"{name}({inside}): the parameter names must differ")
    return NonlinearFormula(response, model, args[0], tuple(args[1:]))
