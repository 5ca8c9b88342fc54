"""The chapter's simulation study of the GLMM fitting methods (section 8.4): the
scenarios and their data (``scenarios``), one replicate's fits (``methods``), the runner on
joblib or Dask that saves and resumes (``runner``), the provenance record of a results file
(``record``) and the bias, coverage and timing tables and figure (``summary``)."""

from companion.study.runner import COLUMNS, load_results, run_replicate, run_study
from companion.study.scenarios import Scenario, get_scenario, simulate
from companion.study.summary import plot_study, summarise, timing

__all__ = ["COLUMNS", "Scenario", "get_scenario", "load_results", "plot_study",
           "run_replicate", "run_study", "simulate", "summarise", "timing"]
