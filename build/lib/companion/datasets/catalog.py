"""The chapter's data sets, one documented loader each, and the lookup by name."""

from __future__ import annotations

import difflib
import json

import numpy as np
import pandas as pd

from companion.datasets._io import DATA_DIR, read_table, schema


def sleepstudy() -> pd.DataFrame:
    """Reaction times in a sleep-deprivation study (lme4 ``sleepstudy``, 180 x 3).

    Source: lme4 1.1-31; Belenky et al. (2003), *Journal of Sleep Research* 12, 1-12.
    Eighteen subjects were allowed three hours of sleep per night; each was measured once a
    day for ten days.

    Columns:
        Reaction: average reaction time on the day's tests, in milliseconds.
        Days: days of sleep restriction, 0 to 9 (lme4's documentation notes that days 0
            and 1 were adaptation and training, day 2 the baseline).
        Subject: subject number, a factor with 18 levels ("308" ... "372").
    """
    return read_table("sleepstudy")


def cbpp() -> pd.DataFrame:
    """Contagious bovine pleuropneumonia in Ethiopian zebu herds (lme4 ``cbpp``, 56 x 4).

    Source: lme4 1.1-31; Lesnoff et al. (2004), *Preventive Veterinary Medicine* 64, 27-40.
    Fifteen herds were followed over four periods; not every herd was seen in every period.

    Columns:
        herd: herd identifier, a factor with 15 levels.
        incidence: number of new serological cases in the herd during the period (a count
            stored as a double, as in R).
        size: number of animals in the herd at the start of the period.
        period: the observation period, a factor with levels "1" to "4".
    """
    return read_table("cbpp")


def Loblolly() -> pd.DataFrame:  # noqa: N802 - R's name
    """Growth of loblolly pine trees (R ``datasets::Loblolly``, 84 x 3).

    Source: R 4.2.2 ``datasets``; Kung (1986), *Proceedings of the Statistical Computing
    Section*, American Statistical Association, 340-343. Fourteen trees, each raised from a
    seed of a different source, measured at ages 3, 5, 10, 15, 20 and 25 years.

    Columns:
        height: tree height, in feet.
        age: tree age, in years.
        Seed: the seed source, an *ordered* factor whose 14 levels run by increasing
            maximum height ("329" < "327" < ... < "305"), as in R's ``groupedData``.
    """
    return read_table("Loblolly")


def PlantGrowth() -> pd.DataFrame:  # noqa: N802 - R's name
    """Yields of plants under a control and two treatments (R ``datasets::PlantGrowth``, 30 x 2).

    Source: R 4.2.2 ``datasets``; Dobson (1983), *An Introduction to Statistical Modelling*,
    Chapman and Hall, table 7.1.

    Columns:
        weight: dried weight of the plant (the yield).
        group: "ctrl", "trt1" or "trt2", ten plants each; "ctrl" is the baseline level.
    """
    return read_table("PlantGrowth")


def Puromycin() -> pd.DataFrame:  # noqa: N802 - R's name
    """Reaction velocity of an enzymatic reaction (R ``datasets::Puromycin``, 23 x 3).

    Source: R 4.2.2 ``datasets``; Treloar (1974), University of Toronto; Bates and Watts
    (1988), *Nonlinear Regression Analysis and Its Applications*, Wiley.

    Columns:
        conc: substrate concentration, in parts per million.
        rate: initial reaction velocity, in counts/min/min.
        state: "treated" (cells treated with Puromycin) or "untreated".
    """
    return read_table("Puromycin")


def volcano() -> pd.DataFrame:
    """Topography of Maunga Whau (Mt Eden), Auckland, in long form (R ``volcano``, 5307 x 3).

    Source: R 4.2.2 ``datasets``; digitised by Ross Ihaka from a topographic map of the
    volcano on a 10 m by 10 m grid. :func:`volcano_matrix` gives the 87 x 61 matrix.

    Columns:
        row: grid line running east to west, 1 to 87 (x in metres is ``10 * (row - 1)``).
        col: grid line running south to north, 1 to 61 (y in metres is ``10 * (col - 1)``).
        height: height above sea level, in metres (whole numbers).
    """
    return read_table("volcano")


def volcano_matrix() -> np.ndarray:
    """The volcano heights as R's 87 x 61 matrix: ``volcano_matrix()[i, j] == volcano[i+1, j+1]``."""
    long = volcano()
    matrix = np.full((long["row"].max(), long["col"].max()), np.nan)
    matrix[long["row"] - 1, long["col"] - 1] = long["height"]
    return matrix


def epil() -> pd.DataFrame:
    """Seizure counts in a trial of progabide for epilepsy (MASS ``epil``, 236 x 9).

    Source: MASS 7.3-58.2; Thall and Vail (1990), *Biometrics* 46, 657-671. Fifty-nine
    patients, four two-week periods each.

    Columns:
        y: number of seizures in the two-week period.
        trt: "placebo" (the baseline level) or "progabide".
        base: number of seizures in the eight weeks before the trial.
        age: the patient's age, in years.
        V4: 1 for the fourth period, 0 otherwise.
        subject: patient number, 1 to 59 (an integer, as in R).
        period: period number, 1 to 4.
        lbase: ``log(base / 4)``, centred.
        lage: ``log(age)``, centred.
    """
    return read_table("epil")


def topo() -> pd.DataFrame:
    """Spatial topographic heights (MASS ``topo``, 52 x 3).

    Source: MASS 7.3-58.2; Davis (1973), *Statistics and Data Analysis in Geology*, Wiley.
    Fifty-two irregularly placed survey points in a 310-foot square.

    Columns:
        x, y: coordinates, in units of 50 feet (0 to about 6.3).
        z: height, in feet.
    """
    return read_table("topo")


def sim_data() -> pd.DataFrame:
    """The chapter's simulated Poisson data with an offset (section 8.4, 2500 x 5).

    Source: the chapter's R code with ``set.seed(2023)`` (R 4.2.2, MASS 7.3-58.2); 25 groups
    of 100 observations, ``y ~ Poisson(o * exp(0.5 + 0.3 x1 + 0.2 x2 + u_g))`` with
    ``u_g ~ N(0, 0.5^2)``. :func:`sim_data_truth` returns the true values.

    Columns:
        y: the simulated count.
        x1, x2: standard normal covariates with correlation 0.8.
        o: exposure, 2 for the first 1250 rows and 4 for the rest (enters as ``log(o)``).
        g: group, a factor with levels "1" to "25".
    """
    return read_table("sim_data")


def sim_data_truth() -> dict:
    """The values that generated :func:`sim_data`: ``beta``, ``sd_u`` and the 25 ``true_u``."""
    return json.loads((DATA_DIR / "sim_data_truth.json").read_text(encoding="utf-8"))


def sim_partial_crossed() -> pd.DataFrame:
    """Simulated subjects and items, partially crossed (1,600 x 4), beyond the chapter.

    Source: simulated in R by the project's test corpus (``tests/reference/corpus/
    make_corpus.R``, ``set.seed(20114)``). Eighty subjects each see 20 of 50 items, drawn at
    random; the condition is drawn per row. The response is
    ``1 + (0, 0.3, -0.2)[cond] + u[subj] + w[item] + e`` with SDs 0.8, 0.5 and 1.

    Columns:
        y: the response, rounded to 4 decimals.
        cond: the condition, a factor with levels "A", "B", "C".
        subj: the subject, a factor with 80 levels ("S01" ... "S80").
        item: the item, a factor with 50 levels ("I01" ... "I50").
    """
    return read_table("sim_partial_crossed")


LOADERS = {
    "sleepstudy": sleepstudy,
    "cbpp": cbpp,
    "Loblolly": Loblolly,
    "PlantGrowth": PlantGrowth,
    "Puromycin": Puromycin,
    "volcano": volcano,
    "epil": epil,
    "topo": topo,
    "sim_data": sim_data,
    "sim_partial_crossed": sim_partial_crossed,
}


def list_datasets(details: bool = False) -> list[str] | pd.DataFrame:
    """The names :func:`load_dataset` accepts; with ``details=True`` a table of their sizes,
    sources and descriptions."""
    if not details:
        return list(LOADERS)
    rows = []
    for name, loader in LOADERS.items():
        spec = schema()[name]
        rows.append(
            {
                "name": name,
                "rows": spec["nrow"],
                "columns": ", ".join(spec["columns"]),
                "source": f"{spec['source_package']} {spec['source_package_version']}",
                "description": loader.__doc__.split("\n", 1)[0],
            }
        )
    return pd.DataFrame(rows).set_index("name")


def load_dataset(name: str) -> pd.DataFrame:
    """Load one of the chapter's data sets by its R name (case does not matter).

    Factors come back as pandas Categoricals in R's level order, so treatment contrasts and
    baselines match R. See each loader (``companion.datasets.sleepstudy`` ...) for the
    source, units and meaning of the columns.
    """
    if not isinstance(name, str):
        raise TypeError(f"the data set name must be a string, not {type(name).__name__}")
    by_lower = {key.lower(): key for key in LOADERS}
    key = by_lower.get(name.strip().lower())
    if key is None:
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
        hint = f" Did you mean {by_lower[close[0]]!r}?" if close else ""
        raise ValueError(
            f"unknown data set {name!r}.{hint} Valid names: {', '.join(LOADERS)}."
        )
    return LOADERS[key]()
