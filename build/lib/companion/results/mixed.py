"""The result of a mixed-model fit by lme4's method (lmer, glmer, nlmer and their
relatives): :class:`MixedModelResult` follows the shared protocol
(:mod:`companion.results.protocol`) and adds lme4's ``theta``, ``sigma``, conditional
modes and variances, ``refit``, ``simulate``, tests and an lme4-style summary. Each fitter's
extras live on its own subclass: :class:`GlmmResult` (family, link, theta's covariance,
blme's prior), :class:`PqlResult` (iterations) and :class:`GlmmRemlResult` (mgcv's
tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from companion.engine.covariance import theta_names
from companion.engine.design import Design
from companion.engine.optimize import OptimizationRecord
from companion.results.protocol import (ModelResult, abbreviate, render_html, render_text,
                                        wald_intervals)


@dataclass(repr=False)
class MixedModelResult(ModelResult):
    """A fitted mixed model. Accessors follow lme4's names, in Python spelling."""

    title: str  # e.g. "Linear mixed model fit by REML"
    formula: str
    method: str  # "REML", "ML", "Laplace", ...
    fixef: pd.Series
    vcov: pd.DataFrame
    varcorr: pd.DataFrame  # tidy: group, var1, var2, vcov, sdcor (lme4's as.data.frame)
    sigma: float
    theta: pd.Series
    loglik: float
    n_params: int
    nobs: int
    ngroups: dict[str, int]
    ranef: dict[str, pd.DataFrame]
    condvar: dict[str, np.ndarray]  # per group: levels x p x p conditional covariances
    fitted: pd.Series
    resid: pd.Series
    optimization: OptimizationRecord
    is_singular: bool = False  # a variance at zero or a correlation at +-1 (lme4's isSingular)
    reml_criterion: float | None = None
    deviance: float | None = None
    scaled_resid: pd.Series | None = None
    devfun: Callable[[np.ndarray], float] | None = field(default=None, repr=False)
    predictor: Any = field(default=None, repr=False)  # builds predictions for new data
    refit_ml: Callable[[], "MixedModelResult"] | None = field(default=None, repr=False)
    refitter: Callable[[Any], "MixedModelResult"] | None = field(default=None, repr=False)

    # --- derived quantities -------------------------------------------------------------
    @property
    def df_resid(self) -> int:
        return self.nobs - self.n_params

    def refit(self, new_response) -> "MixedModelResult":
        """lme4's ``refit``: the same model (design, contrasts, REML or ML) fitted to a new
        response, one number per row the fit used, on the model's scale (a binomial
        GLMM's proportions); lmer fits and binomial or Poisson glmer fits."""
        if self.refitter is None:
            raise ValueError("refit is available for lmer fits and for binomial or Poisson "
                             "glmer fits")
        return self.refitter(new_response)

    def simulate(self, nsim: int = 1, seed=None, use_u: bool = False) -> pd.DataFrame:
        """lme4's ``simulate``: ``nsim`` responses drawn from the fitted model, one column
        each (``sim_1`` ...): new random effects from their fitted distribution, or with
        ``use_u=True`` the fit's own (conditional on them), and a new response given
        them: Gaussian residuals for an lmer fit; binomial successes (as proportions of
        the trials, the model's scale) or Poisson counts for a glmer fit."""
        from companion.inference.resample import simulate_response

        values = simulate_response(self, nsim, seed, use_u)
        return pd.DataFrame(values, index=self.fitted.index,
                            columns=[f"sim_{k + 1}" for k in range(values.shape[1])])

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """R's ``coef(summary(fit, ddf = ...))``. For a linear mixed model (lmerTest):
        ``ddf="Satterthwaite"`` (the default) or ``"Kenward-Roger"`` (pbkrtest's adjusted
        SEs; REML fits) add each fixed effect's denominator degrees of freedom and the
        two-sided p-value of its t statistic; ``ddf="none"`` is lme4's own table
        (estimate, SE, t), without them. Other fits have lme4's table only (a GLMM's
        with Wald z tests and their p-values)."""
        ddf = self._default_ddf(ddf)
        if ddf == "none":
            return self._fixed_effects_table()
        self._check_lmm("degrees of freedom")
        if ddf == "Satterthwaite":
            from companion.inference.satterthwaite import satterthwaite_table

            return satterthwaite_table(self)
        if ddf == "Kenward-Roger":
            from companion.inference.kenward_roger import kenward_roger_table

            return kenward_roger_table(self)
        raise ValueError(f"ddf must be 'Satterthwaite', 'Kenward-Roger' or 'none', "
                         f"not {ddf!r}")

    def summary(self, ddf: str | None = None) -> "Summary":
        """lmerTest's ``summary(fit, ddf = ...)`` for an lmer fit: lme4's summary with the
        fixed effects' df and p-values (Satterthwaite's by default; ``ddf="none"``:
        lme4's, as ``print(fit)`` shows it). Other fits: lme4's summary."""
        ddf = self._default_ddf(ddf)
        return Summary(self, self.coef_table(ddf), ddf)

    def _is_lmm(self) -> bool:
        from companion.engine.profiled import ProfiledDeviance  # LMM fits carry their deviance

        return isinstance(self.devfun, ProfiledDeviance)

    def _default_ddf(self, ddf: str | None) -> str:
        return ("Satterthwaite" if self._is_lmm() else "none") if ddf is None else ddf

    def _check_lmm(self, what: str) -> None:
        if not self._is_lmm():
            raise ValueError(f"{what} are for linear mixed models (lmer fits); a GLMM's "
                             "Wald tests use z, see fit.vcov and fit.se")

    def confint(self, level: float = 0.95, method: str = "wald", nsim: int = 1000,
                seed: int | None = None, boot_type: str = "percentile") -> pd.DataFrame:
        """Confidence intervals. ``method="wald"``: the fixed effects, estimate +- z * SE.
        ``method="profile"``: likelihood-profile intervals for the variance parameters and
        the fixed effects, as lme4's default ``confint`` (LMM and GLMM fits).
        ``method="boot"``: the fixed effects' parametric bootstrap intervals from ``nsim``
        refits (lmer fits; ``boot_type`` "percentile" or "basic"), as lme4's
        ``confint(method = "boot")``."""
        if method == "boot":
            from companion.inference.bootmer import bootstrap

            return bootstrap(self, nsim=nsim, seed=seed, progress=False).confint(
                level, boot_type)
        if method == "profile":
            if self.link_inverse is not None:  # a GLMM: its Laplace deviance is profiled
                from companion.inference.profile_glmm import confint_profile_glmm

                return confint_profile_glmm(self, level)
            from companion.inference.profile import confint_profile

            return confint_profile(self, level)
        if method != "wald":
            raise ValueError(f"method must be 'wald', 'profile' or 'boot', not {method!r}")
        return wald_intervals(self.fixef, self.se, level)

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link",  # noqa: A002
                re_form: str | None = None, allow_new_levels: bool = False,
                interval: str | None = None, level: float = 0.95):
        """lme4's ``predict()``: the linear predictor (``type="link"``, the default, for the
        fit's rows or for ``newdata``) or the mean (``type="response"``; the fitted values
        are ``fit.fitted``). ``re_form=None`` includes every random effect, ``re_form="~0"``
        none (population predictions, lme4's ``re.form = NA``). A level the fit did not
        see is an error unless ``allow_new_levels=True``, which predicts it at the
        population level.

        ``interval="confidence"`` (population predictions only) returns a DataFrame:
        ``fit``, its standard error ``se_fit`` on the link scale from ``vcov`` (the
        uncertainty of the fixed effects), and the ``level`` interval ``lwr``, ``upr``,
        mapped through the inverse link for ``type="response"``. As ggeffects'
        ``ggpredict(type = "fixed")``: t quantiles with the residual df
        (``fit.df_resid``) for an LMM, normal ones for a GLMM."""
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if re_form not in (None, "~0", "NA"):
            raise ValueError(f"re_form must be None (every random effect) or '~0' (none), "
                             f"not {re_form!r}")
        if self.predictor is None:
            raise NotImplementedError(
                f"predict() is not available for this fit ({self.title.splitlines()[0]}); "
                "its fitted values are fit.fitted")
        eta = self.predictor(self, newdata, re_form is None, allow_new_levels)
        if interval is not None:
            return self._confidence_band(eta, newdata, type, re_form, interval, level)
        if type == "response" and self.link_inverse is not None:
            eta = pd.Series(self.link_inverse(eta.to_numpy()), index=eta.index,
                            name="predicted")
        return eta

    def _confidence_band(self, eta: pd.Series, newdata, type: str, re_form,  # noqa: A002
                         interval: str, level: float) -> pd.DataFrame:
        if interval != "confidence":
            raise ValueError(f"interval must be 'confidence' or None, not {interval!r} "
                             "(for intervals that include the random effects, bootstrap "
                             "the predictions with companion.bootstrap)")
        if re_form is None:
            raise ValueError("confidence bands from vcov are for population predictions: "
                             "pass re_form='~0'")
        if not hasattr(self.predictor, "fixed_matrix"):
            raise NotImplementedError(f"confidence bands are not available for a "
                                      f"{self.method} fit")
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, not {level!r}")
        X = self.predictor.fixed_matrix(self, newdata)
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.vcov.to_numpy(), X))
        z = (stats.t.ppf(0.5 + level / 2, self.df_resid) if self.method in ("REML", "ML")
             else stats.norm.ppf(0.5 + level / 2))
        band = pd.DataFrame({"fit": eta, "se_fit": se, "lwr": eta - z * se,
                             "upr": eta + z * se}, index=eta.index)
        if type == "response" and self.link_inverse is not None:
            for column in ("fit", "lwr", "upr"):
                band[column] = self.link_inverse(band[column].to_numpy())
        return band

    def anova(self, *others: "MixedModelResult", type: int | str = 3,  # noqa: A002
              ddf: str = "Satterthwaite") -> pd.DataFrame:
        """With other fits, lme4's ``anova(m0, m1, ...)``: likelihood-ratio tests between
        nested fits, ordered by their number of parameters, each row against the one
        before; REML fits are refitted by ML first, as lme4 does. The fits must use the
        same rows and the same response.

        Alone, lmerTest's ``anova(fit, type, ddf)`` for an lmer fit: an F test of each
        fixed-effect term (type 1: sequential, 3: marginal, as lmerTest builds them),
        with Satterthwaite's or Kenward-Roger's denominator df."""
        if not others:
            self._check_lmm("F tests with denominator degrees of freedom")
            from companion.inference.ftests import anova_table

            return anova_table(self, type, ddf)
        strangers = [other.__class__.__name__ for other in others
                     if not isinstance(other, MixedModelResult)]
        if strangers:
            raise TypeError(f"anova compares fitted models (lmer or glmer results), not "
                            f"{', '.join(strangers)}; for F tests of one fit call fit.anova()")
        fits = sorted([self, *others], key=lambda fit: fit.n_params)
        _check_same_data(fits)
        fits = [fit.refit_ml() if fit.method == "REML" else fit for fit in fits]
        loglik = np.array([fit.loglik for fit in fits])
        npar = np.array([fit.n_params for fit in fits])
        chisq = np.r_[np.nan, np.maximum(2 * np.diff(loglik), 0.0)]
        df = np.r_[np.nan, np.diff(npar)].astype(float)
        with np.errstate(invalid="ignore"):
            p_value = np.where(df > 0, stats.chi2.sf(chisq, np.where(df > 0, df, 1)),
                               np.nan)
        return pd.DataFrame({"npar": npar, "AIC": [fit.aic for fit in fits],
                             "BIC": [fit.bic for fit in fits], "logLik": loglik,
                             "deviance": -2 * loglik, "Chisq": chisq, "Df": df,
                             "Pr(>Chisq)": p_value},
                            index=[fit.formula for fit in fits])

    # --- display ------------------------------------------------------------------------
    def summary_tables(self, fixed: pd.DataFrame | None = None) -> list[tuple[str, Any]]:
        """The summary as (heading, table or text) pairs, for text and HTML alike;
        ``fixed`` replaces lme4's fixed-effects table (lmerTest's, with df)."""
        sections: list[tuple[str, Any]] = [("", f"{self.title}\nFormula: {self.formula}")]
        if self.reml_criterion is not None and self.method == "REML":
            sections.append(("", f"REML criterion at convergence: {self.reml_criterion:.1f}"))
        else:
            sections.append(("", pd.DataFrame(
                {"AIC": [self.aic], "BIC": [self.bic], "logLik": [self.loglik],
                 "deviance": [-2 * self.loglik], "df.resid": [self.df_resid]},
                index=[""]).round(1)))
        if self.scaled_resid is not None:
            q = np.quantile(self.scaled_resid, [0, 0.25, 0.5, 0.75, 1])
            sections.append(("Scaled residuals", pd.DataFrame(
                [q], columns=["Min", "1Q", "Median", "3Q", "Max"], index=[""]).round(4)))
        sections.append(("Random effects", self._random_effects_table()))
        groups = ", ".join(f"{name}, {count}" for name, count in self.ngroups.items())
        sections.append(("", f"Number of obs: {self.nobs}, groups: {groups}"))
        sections.append(("Fixed effects", self._fixed_effects_table() if fixed is None
                         else fixed))
        if len(self.fixef) > 1:
            corr = self.vcov / np.outer(self.se, self.se)
            short = [abbreviate(name) for name in corr.columns]
            lower = pd.DataFrame(np.tril(corr.to_numpy(), -1), index=corr.index, columns=short)
            lower = lower.iloc[1:, :-1].round(3).astype(object)
            mask = np.triu(np.ones(lower.shape, bool), 1)
            lower = lower.mask(mask, "")
            sections.append(("Correlation of Fixed Effects", lower))
        return sections

    def _fixed_effects_table(self) -> pd.DataFrame:
        stat = "t value" if self.method in ("REML", "ML") else "z value"
        table = pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se,
                              stat: self.fixef / self.se})
        if stat == "z value":
            table["Pr(>|z|)"] = 2 * stats.norm.sf(np.abs(table[stat]))
        return table

    def _random_effects_table(self) -> pd.DataFrame:
        rows = []
        for group, part in self.varcorr.groupby("group", sort=False):
            variances = part[part["var2"].isna()]
            corr = part[part["var2"].notna()]
            for i, row in enumerate(variances.itertuples()):
                correlations = [corr[(corr.var1 == prev) & (corr.var2 == row.var1)].sdcor
                                for prev in variances.var1.iloc[:i]]
                rows.append({"Groups": group if i == 0 else "",
                             "Name": "" if pd.isna(row.var1) else row.var1,
                             "Variance": row.vcov, "Std.Dev.": row.sdcor,
                             "Corr": " ".join(f"{c.iloc[0]:.2f}" for c in correlations
                                              if len(c))})
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        return render_text(self.summary_tables())

    def _repr_html_(self) -> str:
        return render_html(self.summary_tables())

    __repr__ = __str__


@dataclass
class Summary:
    """``fit.summary(ddf)``: lme4's summary with lmerTest's fixed-effects table."""

    fit: MixedModelResult
    coefficients: pd.DataFrame | None
    ddf: str

    def sections(self) -> list[tuple[str, Any]]:
        sections = self.fit.summary_tables(self.coefficients)
        if self.ddf != "none":
            sections[0] = ("", sections[0][1].replace(
                "\n", f". t-tests use {self.ddf}'s method\n", 1))
        return sections

    def __str__(self) -> str:
        return render_text(self.sections())

    def _repr_html_(self) -> str:
        return render_html(self.sections())

    __repr__ = __str__


def build_mixed_result(cls: type[MixedModelResult], design: Design, *, theta: np.ndarray,
                       lower: np.ndarray, beta: np.ndarray, vcov: np.ndarray,
                       fitted: np.ndarray, resid: np.ndarray, **fields) -> MixedModelResult:
    """The one way a fitter of lme4's formulation builds its result (lme4's
    ``mkMerMod``): what every fit derives alike from its design and optimum (named
    fixed effects and covariance, lme4's theta names, the groups, the rows of the fitted
    values and residuals, the boundary check) and the fitter's own ``fields``."""
    names = design.fixed_names
    theta = np.asarray(theta, dtype=float)
    return cls(
        fixef=pd.Series(beta, index=names, name="fixef"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        theta=pd.Series(theta, index=theta_names(design), name="theta"),
        nobs=design.n, ngroups={block.group: block.n_levels for block in design.blocks},
        fitted=pd.Series(fitted, index=design.rows, name="fitted"),
        resid=pd.Series(resid, index=design.rows, name="resid"),
        is_singular=bool(np.any(np.isfinite(lower) & (theta - lower < 1e-4))), **fields)


def _check_same_data(fits) -> None:
    """Nested fits are compared on the same rows with the same response, or not at all."""
    first = fits[0]
    for fit in fits[1:]:
        if fit.nobs != first.nobs or not fit.fitted.index.equals(first.fitted.index):
            raise ValueError(
                f"the fits use different rows ({first.formula!r}: {first.nobs}, "
                f"{fit.formula!r}: {fit.nobs}); a likelihood-ratio test needs the same "
                "rows: drop the rows with missing values in any model's variables first")
        responses = [getattr(getattr(f.devfun, "design", None), "y", None)
                     for f in (first, fit)]
        if all(r is not None for r in responses) and not np.array_equal(*responses):
            raise ValueError(f"the fits have different responses ({first.formula!r} and "
                             f"{fit.formula!r}); a likelihood-ratio test compares models "
                             "of the same data")


@dataclass(repr=False)
class GlmmResult(MixedModelResult):
    """A GLMM fit: its family, inverse link and the covariance of theta; blme's prior."""

    family: str | None = None  # "binomial  ( logit )"
    link_inverse: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    vcov_theta: pd.DataFrame | None = None  # theta's, from the deviance's Hessian
    prior_deviance: float | None = None  # penalized (blme) fits


@dataclass(repr=False)
class PqlResult(GlmmResult):
    """MASS::glmmPQL's fit: a GLMM result with the number of outer iterations."""

    iterations: int | None = None


@dataclass(repr=False)
class GlmmRemlResult(GlmmResult):
    """The REML-Laplace fit of glmmTMB and mgcv: their extra tables and residual df."""

    vcov_conditional: pd.DataFrame | None = None  # given theta (mgcv's Vp)
    vcomp: pd.DataFrame | None = None  # gam.vcomp's SDs and intervals
    gam_summary: dict | None = None  # summary.gam's edf, R-sq.(adj), ...
    residual_df: int | None = None  # glmmTMB's, when not nobs - n_params

    @property
    def df_resid(self) -> int:
        return self.nobs - self.n_params if self.residual_df is None else self.residual_df
