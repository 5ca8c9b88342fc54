"""The result of :func:`companion.nlmm.nlme.nlme`: a :class:`MixedModelResult` (same names as
lmer's) with nlme's degrees of freedom and standard errors, and a summary laid out as
``summary(nlme)`` prints it, numbers formatted as R formats them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from companion.engine.optimize import OptimizationRecord
from companion.nlmm.nlme_fit import Fit, Problem
from companion.nlmm.selfstart import NonlinearFormula
from companion.results import FitSummary, MixedModelResult, abbreviate


@dataclass
class Spec:
    """What the fit was asked for, and how the data's rows were ordered for it."""

    formula: str
    parsed: NonlinearFormula
    random: list[str]
    groups: str
    levels: list[str]
    method: str
    start: np.ndarray
    rows: pd.Index  # the data's rows, in their order
    order: np.ndarray  # positions of the rows sorted by group, as fitted


@dataclass(repr=False)
class NlmeResult(MixedModelResult):
    """A fitted nonlinear mixed model. ``se`` are the standard errors ``summary(nlme)``
    prints: for ML fits ``sqrt(diag(vcov)) * sqrt(n / (n - p))`` (nlme's ``adjustSigma``);
    ``vcov`` is R's ``vcov(fit)``. ``theta`` holds ``coef(fit$modelStruct)``;
    ``iterations`` nlme's ``numIter``."""

    fixef_df: pd.Series = field(default_factory=lambda: pd.Series(dtype=int))
    random_header: str = ""  # the lines summary(nlme) prints above the random effects
    structure: str = ""  # "pdLogChol" or "pdDiag"
    criteria: dict = field(default_factory=dict)  # the last iteration's relative changes
    iterations: int | None = None  # nlme's numIter

    def predict(self, newdata: pd.DataFrame | None = None,  # type: ignore[override]
                re: bool = True) -> pd.Series:
        """nlme's ``predict()``: the fitted curve for ``newdata`` (the fitted values without
        it) with each group's random effects, or the population curve with ``re=False``;
        a group not in the fit gets the population curve."""
        if newdata is None and re:
            return self.fitted
        return self.predictor(self, newdata, re)

    @property
    def se(self) -> pd.Series:
        scale = np.sqrt(self.nobs / (self.nobs - len(self.fixef))) if self.method == "ML" \
            else 1.0
        return pd.Series(np.sqrt(np.diag(self.vcov)) * scale, index=self.fixef.index,
                         name="se")

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """R's ``coef(summary(nlme))``: value, SE, DF, t and p per fixed effect."""
        t = self.fixef / self.se
        return pd.DataFrame({"Value": self.fixef, "Std.Error": self.se, "DF": self.fixef_df,
                             "t-value": t, "p-value": 2 * stats.t.sf(np.abs(t), self.fixef_df)})

    def summary(self, ddf: str | None = None) -> FitSummary:
        """R's ``summary(nlme)``, printed as R prints it."""
        return FitSummary(self.coef_table(), self.__str__, self._repr_html_)

    def summary_tables(self) -> list[tuple[str | None, object]]:
        """(heading, text or table) pairs; ``None`` continues the previous paragraph."""
        fit_table = pd.DataFrame({name: [_format([value])[0]] for name, value in
                                  [("AIC", self.aic), ("BIC", self.bic),
                                   ("logLik", self.loglik)]}, index=[" "])
        sections = [("", f"{self.title}\n  Model: {self.formula}"),
                    (None, fit_table),
                    ("Random effects:", self.random_header),
                    (None, self._random_table()),
                    (f"Fixed effects:  {' + '.join(self.fixef.index)} ~ 1", self._t_table())]
        if len(self.fixef) > 1:
            sections += [(None, " Correlation: "), (None, self._correlation_table())]
        quartiles = np.quantile(self.scaled_resid, [0, 0.25, 0.5, 0.75, 1])
        sections += [("Standardized Within-Group Residuals:", pd.DataFrame(
                         [_format(quartiles)], columns=["Min", "Q1", "Med", "Q3", "Max"])),
                     ("", f"Number of Observations: {self.nobs}\nNumber of Groups: "
                          f"{next(iter(self.ngroups.values()))}")]
        return sections

    def _random_table(self) -> pd.DataFrame:
        names = list(self.ranef[next(iter(self.ngroups))].columns)
        variances = self.varcorr[self.varcorr.var2.isna()]
        sds = variances.sdcor.to_numpy()
        if len(names) == 1 or self.structure == "pdDiag":
            return pd.DataFrame([[_format([sd])[0] for sd in sds]],
                                columns=[*names, "Residual"], index=["StdDev:"])
        table = pd.DataFrame("", index=[*names, "Residual"],
                             columns=["StdDev", "Corr", *[""] * (len(names) - 2)])
        table["StdDev"] = _format(sds)
        corr = self.varcorr[self.varcorr.var2.notna()]
        values = {(row.var1, row.var2): row.sdcor for row in corr.itertuples()}
        lower = [(i, j) for i in range(1, len(names)) for j in range(i)]
        text = _format(np.round([values[names[j], names[i]] for i, j in lower], 3))
        for (i, j), value in zip(lower, text):
            table.iloc[i, 1 + j] = value
        table.iloc[0, 1:] = [abbreviate(name) for name in names[:-1]]
        table.attrs["align"] = "left"  # R prints character matrices left-aligned
        return table

    def _t_table(self) -> pd.DataFrame:
        se = self.se
        t = self.fixef / se
        p = 2 * stats.t.sf(np.abs(t), self.fixef_df)
        return pd.DataFrame({"Value": _format(_zapsmall(self.fixef)),
                             "Std.Error": _format(_zapsmall(se)),
                             "DF": self.fixef_df.astype(int).astype(str),
                             "t-value": _format(_zapsmall(t)),
                             "p-value": _format(np.round(p, 4))}, index=self.fixef.index)

    def _correlation_table(self) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.vcov))
        corr = self.vcov.to_numpy() / np.outer(se, se)
        names = list(self.fixef.index)
        table = pd.DataFrame("", index=names[1:], columns=[abbreviate(n) for n in names[:-1]])
        rows, cols = np.tril_indices(len(names), -1)
        for i, j, text in zip(rows, cols, _format(np.round(corr[rows, cols], 3))):
            table.iloc[i - 1, j] = text
        table.attrs["align"] = "left"
        return table

    def __str__(self) -> str:
        lines: list[str] = []
        for heading, body in self.summary_tables():
            if heading is not None and lines:
                lines.append("")
            if heading:
                lines.append(heading)
            lines.append(body if isinstance(body, str) else _render(body))
        return "\n".join(lines)

    __repr__ = __str__


def _render(table: pd.DataFrame) -> str:
    """A table of strings as R prints it: one space between columns, row names (unless
    a plain range) left-aligned, cells right-aligned (left for character matrices)."""
    align = str.ljust if table.attrs.get("align") == "left" else str.rjust
    columns = [[str(label), *map(str, table.iloc[:, j])]
               for j, label in enumerate(table.columns)]
    columns = [[align(cell, max(map(len, column))) for cell in column] for column in columns]
    if not isinstance(table.index, pd.RangeIndex):
        names = ["", *map(str, table.index)]
        columns.insert(0, [name.ljust(max(map(len, names))) for name in names])
    return "\n".join(" ".join(row) for row in zip(*columns))


def _zapsmall(values, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest value."""
    values = np.asarray(values, dtype=float)
    largest = np.max(np.abs(values))
    return values if largest == 0 else np.round(values, int(np.floor(
        digits - np.log10(largest) + 0.5)))


def _format(values, digits: int = 7) -> list[str]:
    """R's ``format`` of a numeric vector: the fewest common decimals that show each value
    to ``digits`` significant digits (scientific notation where that is narrower), padded
    to a common width."""
    values = np.asarray(values, dtype=float)
    significant = [len(f"{abs(v):.{digits - 1}e}".split("e")[0].replace(".", "")
                       .rstrip("0")) if v else 1 for v in values]
    exponents = [int(np.floor(np.log10(abs(v)))) if v else 0 for v in values]
    decimals = max(0, *(s - 1 - e for s, e in zip(significant, exponents)))
    fixed = [f"{v:.{decimals}f}" for v in values]
    scientific = [f"{v:.{max(significant) - 1}e}" for v in values]
    chosen = scientific if max(map(len, fixed)) > max(map(len, scientific)) else fixed
    width = max(map(len, chosen))
    return [text.rjust(width) for text in chosen]


def fixed_effect_df(X: np.ndarray, codes: np.ndarray) -> np.ndarray:  # noqa: N803
    """nlme's denominator degrees of freedom (``getFixDF``) with one grouping factor, for
    rows sorted by group: a column that varies within some group is estimated at the
    residual level, one constant within groups at the group level, a constant one is an
    intercept."""
    n, m = len(codes), codes[-1] + 1
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    within = (X != X[starts][codes]).any(axis=0)
    constant = np.abs(X - X[0]).sum(axis=0) < np.sqrt(np.finfo(float).eps)
    df = np.array([m, n - m]) - np.bincount(within[~constant].astype(int), minlength=2)
    if constant.any():
        df[0] -= 1
    else:
        df[1:] += 1
    return np.where(constant, df.max(), df[within.astype(int)])


def build_result(fit: Fit, problem: Problem, spec: Spec) -> NlmeResult:
    lmm, names = fit.lmm, spec.parsed.parameters
    solution = lmm.solve(fit.x)
    reml = spec.method == "REML"
    sigma = float(np.sqrt(solution.pwrss / (lmm.n - lmm.p if reml else lmm.n)))
    covariance = problem.form.covariance(fit.x)
    loglik = -lmm.deviance(solution, reml) / 2
    fitted = np.empty(lmm.n)
    fitted[spec.order] = problem.y - fit.residual
    y = np.empty(lmm.n)
    y[spec.order] = problem.y
    X = problem.model.gradient(problem.x, problem.parameters(fit.beta, fit.b))  # noqa: N806
    df = fixed_effect_df(X, problem.codes)
    group = spec.groups
    ranef = pd.DataFrame(fit.b, index=pd.Index(spec.levels, name=group), columns=spec.random)
    criteria = ", ".join(f"{key} {value:.3g}" for key, value in fit.criteria.items())
    record = OptimizationRecord(
        "nlme: LME and PNLS steps", spec.start, fit.beta, fit.iterations, fit.converged,
        lmm.gradient(solution, reml),
        f"{'converged' if fit.converged else 'stopped'} after {fit.iterations} iterations; "
        f"last relative changes: {criteria}")
    resid = y - fitted
    kind = "REML" if reml else "maximum likelihood"
    return NlmeResult(
        title=f"Nonlinear mixed-effects model fit by {kind}", formula=spec.formula, method=spec.method,
        fixef=pd.Series(fit.beta, index=list(names), name="fixef"),
        vcov=pd.DataFrame(sigma**2 * lmm.fixed_covariance(solution), index=list(names),
                          columns=list(names)),
        varcorr=_varcorr(group, spec.random, sigma**2 * covariance, sigma,
                         problem.form.diag),
        sigma=sigma, theta=_model_struct(group, problem.form.parameters(
            np.linalg.inv(covariance))),
        loglik=float(loglik), n_params=len(names) + problem.form.n_parameters + 1,
        nobs=lmm.n, ngroups={group: problem.n_groups}, ranef={group: ranef},
        condvar={group: sigma**2 * lmm.conditional_covariances(solution)},
        fitted=pd.Series(fitted, index=spec.rows, name="fitted"),
        resid=pd.Series(resid, index=spec.rows, name="resid"),
        optimization=record, iterations=fit.iterations,
        reml_criterion=-2 * loglik if reml else None,
        deviance=None if reml else -2 * loglik,
        scaled_resid=pd.Series(resid / sigma, index=spec.rows),
        predictor=_predict_with(spec),
        fixef_df=pd.Series(df.astype(int), index=list(names), name="DF"),
        random_header=_random_header(spec.random, group, problem.form.diag),
        structure="pdDiag" if problem.form.diag else "pdLogChol",
        criteria=dict(fit.criteria))


def _varcorr(group, names, cov, sigma, diag) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(fit))`` layout."""
    sd = np.sqrt(np.diag(cov))
    rows = [(group, name, None, cov[i, i], sd[i]) for i, name in enumerate(names)]
    if not diag:
        rows += [(group, names[i], names[j], cov[i, j], cov[i, j] / (sd[i] * sd[j]))
                 for i in range(len(names)) for j in range(i + 1, len(names))]
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])


def _model_struct(group: str, values: np.ndarray) -> pd.Series:
    """``coef(fit$modelStruct)`` with R's names."""
    names = [f"reStruct.{group}"] if len(values) == 1 else \
        [f"reStruct.{group}{k}" for k in range(1, len(values) + 1)]
    return pd.Series(values, index=names, name="theta")


def _random_header(random: list[str], group: str, diag: bool) -> str:
    """The lines ``summary(nlme)`` prints above the random effects' table."""
    if len(random) == 1:
        return f" Formula: {random[0]} ~ 1 | {group}"
    structure = "Diagonal" if diag else \
        "General positive-definite, Log-Cholesky parametrization"
    return (f" Formula: list({', '.join(f'{name} ~ 1' for name in random)})\n"
            f" Level: {group}\n Structure: {structure}")


def _predict_with(spec: Spec):
    """Predictions for new data: the fixed effects, plus each row's group's random
    effects when ``re`` (zero for groups not in the fit)."""
    model, covariate = spec.parsed.model, spec.parsed.covariate
    names = list(spec.parsed.parameters)

    def predict(fit: NlmeResult, newdata: pd.DataFrame | None, re: bool) -> pd.Series:
        data = newdata
        if data is None:
            raise ValueError("give newdata, or use fit.fitted for the fitted values")
        phi = np.repeat(fit.fixef.to_numpy()[:, None], len(data), axis=1)
        if re:
            effects = fit.ranef[spec.groups].reindex(data[spec.groups].astype(str).to_numpy())
            for name in effects.columns:
                phi[names.index(name)] += effects[name].fillna(0.0).to_numpy()
        value = model.value(data[covariate].to_numpy(dtype=float), phi)
        return pd.Series(value, index=data.index, name="predicted")

    return predict
