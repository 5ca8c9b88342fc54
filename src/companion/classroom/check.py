"""Self-checks for the exercises: ``companion.check.<exercise>(answer)`` says whether a
student's estimates are within tolerance of R's, naming what is off but never the value.

They are for learners, not a grading tool: the expected values ship inside the package,
where anyone can read them. To grade a class, use the autograded assignments
(``python -m companion assignments --format otter``; the book's page "Teaching with this
book"), whose hidden tests stay with the teacher.

>>> from companion import check
>>> check.puromycin({"Vm_treated": 212.7, "K_treated": 0.0641,
...                  "Vm_untreated": 160.3, "K_untreated": 0.0477})
All 4 estimates are within 0.1% of R's: well done.

The answers each check expects are listed in :data:`EXPECTED`; ``help(check.<name>)``
shows them too. The volcano exercise has no single right answer (the split is random), so
its check scores held-out predictions against the true heights instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from companion.compare.tables import reference

RELATIVE_TOLERANCE = 1e-3  # generous: other optimizers stop a little elsewhere
VOLCANO_RMSE = 5.0  # metres; a GP on a few hundred training cells does far better


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: truthy when the answer passes."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message


def _fixef(name: str, tight: bool = False) -> dict[str, float]:
    entry = reference(name)
    return dict((entry["tight_optimum"] if tight else entry)["fixef"])


def _plantgrowth() -> dict[str, float]:
    r = reference("plantgrowth_lmer_reml")
    return {"intercept": r["fixef"]["(Intercept)"],
            "sd_group": r["varcorr"]["group"]["sd"]["(Intercept)"], "sigma": r["sigma"]}


def _epil() -> dict[str, float]:
    return _fixef("epil_glmer_laplace", tight=True)


def _puromycin() -> dict[str, float]:
    out = {}
    for state in ("treated", "untreated"):
        coef = reference(f"puromycin_nls_{state}")["coef"]
        out |= {f"Vm_{state}": coef["Vm"], f"K_{state}": coef["K"]}
    return out


def _topo() -> dict[str, float]:
    r = reference("topo_gls_gauss_reml")
    return {"mean": r["coef"]["(Intercept)"], "sigma": r["sigma"]}


EXPECTED = {
    "plantgrowth": ("lmer(weight ~ 1 + (1 | group)) by REML: the intercept, the SD of the "
                    "group effects and the residual SD", _plantgrowth),
    "epil": ("glmer(y ~ lbase * trt + lage + V4 + (1 | subject), family='poisson'): the "
             "six fixed effects, named as R names them", _epil),
    "puromycin": ("nls(rate ~ SSmicmen(conc, Vm, K)) for each state: Vm and K of the "
                  "treated and of the untreated", _puromycin),
    "topo": ("kriging (gls with a Gaussian correlation and a nugget) by REML: the mean and "
             "the residual (total) SD", _topo),
}


def _compare(exercise: str, answer) -> Verdict:
    description, truth = EXPECTED[exercise]
    truth = truth()
    if not isinstance(answer, Mapping) and not hasattr(answer, "to_dict"):
        raise TypeError(f"check.{exercise} takes a mapping (a dict or a pandas Series) of "
                        f"{description}: keys {sorted(truth)}")
    answer = dict(answer.to_dict() if hasattr(answer, "to_dict") else answer)
    missing, extra = sorted(set(truth) - set(answer)), sorted(set(answer) - set(truth))
    if missing or extra:
        raise ValueError(f"check.{exercise} expects the keys {sorted(truth)}"
                         + (f"; missing {missing}" if missing else "")
                         + (f"; unexpected {extra}" if extra else ""))
    try:
        values = {key: float(answer[key]) for key in truth}
    except (TypeError, ValueError):
        raise TypeError(f"check.{exercise}: every value must be a number") from None
    off = [key for key, value in values.items()
           if not np.isclose(value, truth[key], rtol=RELATIVE_TOLERANCE, atol=0)]
    if not off:
        return Verdict(True, f"All {len(truth)} estimates are within "
                             f"{RELATIVE_TOLERANCE:.1%} of R's: well done.")
    hints = ", ".join(f"{key} ({'too high' if values[key] > truth[key] else 'too low'})"
                      for key in off)
    return Verdict(False, f"Not yet: {hints}. The other {len(truth) - len(off)} are right.")


def plantgrowth(answer) -> Verdict:
    """Exercise 2. ``answer``: ``{"intercept", "sd_group", "sigma"}`` of the REML fit.
    A learner's self-check, not a grading tool (see ``help(companion.check)``)."""
    return _compare("plantgrowth", answer)


def epil(answer) -> Verdict:
    """Exercise 3. ``answer``: the six fixed effects of the Laplace fit, keyed as R names
    them ("(Intercept)", "lbase", "trtprogabide", "lage", "V4", "lbase:trtprogabide"),
    e.g. ``fit.fixef``.
    A learner's self-check, not a grading tool (see ``help(companion.check)``)."""
    return _compare("epil", answer)


def puromycin(answer) -> Verdict:
    """Exercise 4. ``answer``: ``{"Vm_treated", "K_treated", "Vm_untreated",
    "K_untreated"}``.
    A learner's self-check, not a grading tool (see ``help(companion.check)``)."""
    return _compare("puromycin", answer)


def topo(answer) -> Verdict:
    """Exercise 5. ``answer``: ``{"mean", "sigma"}`` of the REML kriging fit.
    A learner's self-check, not a grading tool (see ``help(companion.check)``)."""
    return _compare("topo", answer)


def volcano(rows, cols, predictions) -> Verdict:
    """Exercise 1. The row and column indices of your held-out cells in the 87 x 61
    ``volcano`` matrix (0-based) and your predictions there; passes when their RMSE
    against the true heights is below 5 m.
    A learner's self-check, not a grading tool (see ``help(companion.check)``)."""
    from companion.datasets import volcano_matrix

    heights = volcano_matrix()
    rows, cols = np.asarray(rows), np.asarray(cols)
    predictions = np.asarray(predictions, dtype=float)
    if not (rows.shape == cols.shape == predictions.shape) or rows.ndim != 1:
        raise ValueError("check.volcano takes three 1-D arrays of the same length: row "
                         "indices, column indices and predictions")
    if len(rows) < 50:
        raise ValueError(f"hold out at least 50 cells to check (got {len(rows)})")
    if (rows.min() < 0 or cols.min() < 0 or rows.max() >= heights.shape[0]
            or cols.max() >= heights.shape[1]):
        raise ValueError(f"indices must be within the {heights.shape[0]} x "
                         f"{heights.shape[1]} volcano matrix (0-based)")
    rmse = float(np.sqrt(np.mean((heights[rows, cols] - predictions) ** 2)))
    if rmse < VOLCANO_RMSE:
        return Verdict(True, f"Held-out RMSE {rmse:.2f} m: well done.")
    return Verdict(False, f"Held-out RMSE {rmse:.1f} m, above {VOLCANO_RMSE:g} m: look at "
                          "the length scale and the nugget of your GP.")


EXERCISES = ("volcano", "plantgrowth", "epil", "puromycin", "topo")


def __getattr__(name: str):
    raise AttributeError(f"companion.check has no exercise named {name!r}; the exercises "
                         f"are: {', '.join(EXERCISES)}")
