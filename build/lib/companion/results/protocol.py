"""The names every frequentist fit answers to, as lme4 spells them in Python.

A fitter's result provides ``title``, ``formula``, ``fixef`` (a Series), ``vcov`` (a
DataFrame), ``loglik`` (NaN for estimating equations, which have none), ``nobs``,
``n_params``, ``varcorr`` (lme4's tidy table; empty without random effects) and ``ranef``
(per grouping factor; empty without); :class:`ModelResult` derives the rest from them:
``se``, ``aic``, ``bic``, ``coef_table()``, ``confint()``, ``summary()``, ``predict()``
and the printed and HTML views. Extras belong to the fitter's own subclass.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from companion.engine.covariance import VARCORR_COLUMNS

PROTOCOL = ("fixef", "se", "vcov", "varcorr", "loglik", "aic", "bic", "nobs", "n_params",
            "ranef", "summary", "predict", "confint", "coef_table")


def empty_varcorr() -> pd.DataFrame:
    """The variance-components table of a model without random effects."""
    return pd.DataFrame(columns=VARCORR_COLUMNS)


class ModelResult:
    """A fitted model under the shared names (see the module's docstring)."""

    predictor: Any = None  # builds the linear predictor for new data, when the fit can
    link_inverse: Any = None  # the mean from the linear predictor (GLMs and GLMMs)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.fixef.index, name="se")

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.nobs) * self.n_params

    def coef_table(self) -> pd.DataFrame:
        """Estimates, standard errors and Wald z tests (R's ``coef(summary(fit))``)."""
        z = self.fixef / self.se
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se, "z value": z,
                             "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))})

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals of the fixed effects: estimate +- z * SE."""
        return wald_intervals(self.fixef, self.se, level)

    def predict(self, newdata: pd.DataFrame | None = None,
                type: str = "link") -> pd.Series:  # noqa: A002
        """The population-level linear predictor (``type="link"``) or mean
        (``type="response"``) for the fit's rows or ``newdata``."""
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if self.predictor is None:
            raise NotImplementedError(f"predict() is not available for a "
                                      f"{type_name(self)} fit")
        eta = self.predictor(self, newdata, False)
        if type == "response" and self.link_inverse is not None:
            eta = pd.Series(self.link_inverse(eta.to_numpy()), index=eta.index,
                            name="predicted")
        return eta

    def summary(self) -> "FitSummary":
        """The printed summary: the model, its fit statistics, random effects, estimates."""
        sections = self.summary_tables()
        return FitSummary(self.coef_table(), lambda: render_text(sections),
                          lambda: render_html(sections))

    def summary_tables(self) -> list[tuple[str, Any]]:
        """The summary as (heading, table or text) pairs, for text and HTML alike."""
        sections: list[tuple[str, Any]] = [("", f"{self.title}\nFormula: {self.formula}")]
        if np.isfinite(self.loglik):
            sections.append(("", pd.DataFrame(
                {"AIC": [self.aic], "BIC": [self.bic], "logLik": [self.loglik]},
                index=[""]).round(2)))
        if len(self.varcorr):
            sections.append(("Random effects", self.varcorr))
        sections.append(("", f"Number of obs: {self.nobs}"))
        sections.append(("Coefficients", self.coef_table()))
        return sections

    def __str__(self) -> str:
        return render_text(self.summary_tables())

    def _repr_html_(self) -> str:
        return render_html(self.summary_tables())


class FitSummary:
    """A fit's summary, printed as text or shown as HTML; ``coefficients`` is the
    estimates table, as R's ``coef(summary(fit))``."""

    def __init__(self, coefficients: pd.DataFrame, text: Callable[[], str],
                 html: Callable[[], str]):
        self.coefficients, self._text, self._html = coefficients, text, html

    def __str__(self) -> str:
        return self._text()

    def _repr_html_(self) -> str:
        return self._html()

    __repr__ = __str__


def type_name(fit) -> str:
    return type(fit).__name__


def wald_intervals(estimate: pd.Series, se: pd.Series, level: float) -> pd.DataFrame:
    """``estimate +- z * se`` with R's column names (``2.5 %``, ``97.5 %``)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    z = stats.norm.ppf(0.5 + level / 2)
    pct = [f"{100 * (0.5 - level / 2):g} %", f"{100 * (0.5 + level / 2):g} %"]
    return pd.DataFrame({pct[0]: estimate - z * se, pct[1]: estimate + z * se})


def render_text(sections: list[tuple[str, Any]]) -> str:
    """A summary's sections as R prints them."""
    parts = []
    for heading, body in sections:
        text = body if isinstance(body, str) else body.to_string(
            index=not isinstance(body.index, pd.RangeIndex),
            float_format=lambda v: f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}")
        parts.append(f"{heading}:\n{text}" if heading else text)
    return "\n\n".join(parts)


def render_html(sections: list[tuple[str, Any]]) -> str:
    """A summary's sections as HTML tables, for notebooks."""
    parts = []
    for heading, body in sections:
        if heading:
            parts.append(f"<h4>{heading}</h4>")
        if isinstance(body, str):
            parts.append("<pre>" + body + "</pre>")
        else:
            parts.append(body.to_html(float_format=lambda v: f"{v:.4g}",
                                      index=not isinstance(body.index, pd.RangeIndex),
                                      classes="companion-summary", border=0))
    return "\n".join(parts)


def abbreviate(name: str) -> str:
    """R's abbreviation in the correlation table: (Intercept) -> (Intr)."""
    return "(Intr)" if name == "(Intercept)" else name[:6]
