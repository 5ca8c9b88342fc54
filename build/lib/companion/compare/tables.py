"""R beside Python: the reference results of the chapter's R fits, and the side-by-side
tables the book prints (R as the chapter printed it, R at full precision, Python, and the
difference)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

from companion.results import MixedModelResult


@cache
def reference(name: str) -> dict:
    """R's result for one fit of the chapter (``companion/reference/<name>.json``)."""
    folder = files("companion") / "reference"
    path = folder / f"{name}.json"
    if not path.is_file():
        names = sorted(p.name[:-5] for p in folder.iterdir()
                       if p.name.endswith(".json") and p.name not in {"index.json",
                                                                       "failures.json"})
        raise ValueError(f"no R reference named {name!r}; the references are: "
                         f"{', '.join(names)}")
    return json.loads(path.read_text(encoding="utf-8"))


def _short(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name


def fit_quantities(fit: MixedModelResult) -> dict[str, float]:
    """A fit's numbers under the names the references use for the chapter's printout."""
    values = {"AIC": fit.aic, "BIC": fit.bic, "logLik": fit.loglik, "sigma": fit.sigma,
              "var_resid": fit.sigma**2, "deviance": -2 * fit.loglik,
              "df_resid": fit.df_resid}
    if fit.reml_criterion is not None:
        values["REMLcrit"] = fit.reml_criterion
    if getattr(fit, "prior_deviance", None) is not None:
        values["prior_dev"] = fit.prior_deviance
    random = fit.varcorr[fit.varcorr.group != "Residual"]
    variances = random[random.var2.isna()]
    columns_per_group = variances.group.value_counts()
    for row in variances.itertuples():
        values[f"sd_{_short(row.var1)}"] = row.sdcor
        values[f"var_{_short(row.var1)}"] = row.vcov
        if columns_per_group[row.group] == 1:  # a scalar term is named by its group
            values[f"sd_{row.group}"] = row.sdcor
            values[f"var_{row.group}"] = row.vcov
    correlations = random[random.var2.notna()]
    if len(correlations) == 1:
        values["corr"] = correlations.sdcor.iloc[0]
    for name in fit.fixef.index:
        values[f"fixef_{name}"] = fit.fixef[name]
        values[f"se_{name}"] = fit.se[name]
        values[f"t_{name}"] = fit.fixef[name] / fit.se[name]
    if fit.ranef:
        table = next(iter(fit.ranef.values()))
        for level, row in table.iterrows():
            for column, value in row.items():
                suffix = "int" if column == "(Intercept)" else column.lower()
                values[f"re_{level}_{suffix}"] = value
    if fit.scaled_resid is not None:
        quantiles = np.quantile(fit.scaled_resid, [0, 0.25, 0.5, 0.75, 1])
        for label, value in zip(["min", "q1", "median", "q3", "max"], quantiles):
            values[f"resid_{label}"] = value
    return values


def compare_printed(name: str, values: dict[str, float]) -> pd.DataFrame:
    """One row per number the chapter printed for R fit ``name``: the printed text, R's
    full-precision value, ours, and their relative difference."""
    rows = []
    for item in reference(name)["chapter_printed_check"]["items"]:
        quantity, r_value = item["quantity"], item["r_value"]
        ours = values.get(quantity, np.nan)
        rows.append({"quantity": quantity, "R (printed)": item["printed"], "R": r_value,
                     "Python": ours,
                     "relative difference": (ours - r_value) / abs(r_value) if r_value
                     else ours - r_value})
    return pd.DataFrame(rows).set_index("quantity")


def compare_tight(name: str, fit: MixedModelResult) -> pd.DataFrame:
    """lme4's default fit, R's fit refitted with tight tolerances (``tight_optimum`` in the
    reference), ours, and ours minus the tight fit: fixed effects, SEs, theta, logLik."""
    r = reference(name)
    tight = r["tight_optimum"]
    rows = [(f"fixef {k}", r["fixef"][k], tight["fixef"][k], fit.fixef[k]) for k in r["fixef"]]
    rows += [(f"se {k}", r["fixef_se"][k], tight["fixef_se"][k], fit.se[k])
             for k in r["fixef_se"]]
    rows += [(f"theta {k}", r["theta"][k], tight["theta"][k], fit.theta[k])
             for k in r["theta"]]
    rows.append(("logLik", r["logLik"], tight["logLik"], fit.loglik))
    table = pd.DataFrame(rows, columns=["quantity", "R (default)", "R (tight)", "Python"])
    table["Python - R (tight)"] = table["Python"] - table["R (tight)"]
    return table.set_index("quantity")


def chapter_table(name: str) -> pd.DataFrame:
    """A posterior summary the chapter printed for a fit R could not rerun (brms,
    MCMCglmm, INLA): ``chapter_table("sleepstudy_inla_iid")``."""
    tables = json.loads((files("companion") / "reference" / "chapter_printed.json")
                        .read_text(encoding="utf-8"))
    if name not in tables or name == "description":
        known = ", ".join(k for k in tables if k != "description")
        raise ValueError(f"the chapter printed no table named {name!r}; known: {known}")
    table = tables[name]
    return pd.DataFrame.from_dict(table["rows"], orient="index", columns=table["columns"])


def r_table(table: dict) -> pd.DataFrame:
    """A table R wrote as ``{rownames, colnames, values}`` (R's ``NA`` as NaN)."""
    values = [[np.nan if v in ("NA", None) else v for v in row] for row in table["values"]]
    return pd.DataFrame(values, index=table["rownames"], columns=table["colnames"],
                        dtype=float)


def beside(ours: pd.DataFrame, printed: pd.DataFrame, label: str = "chapter") -> pd.DataFrame:
    """Each row of the chapter's printed table, followed by ours, for the same columns."""
    rows, columns = printed.index, printed.columns
    both = pd.concat({label: printed, "Python": ours.loc[rows, columns]}, names=["source"])
    order = {name: i for i, name in enumerate(rows)}
    return both.swaplevel().sort_index(level=0, key=lambda index: index.map(order),
                                       sort_remaining=False)
