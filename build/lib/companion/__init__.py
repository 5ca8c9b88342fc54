"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python.

The fitters and helpers below are loaded on first use (PEP 562), so ``import companion``
is quick and loads no statistics, plotting or Bayesian library. The subpackages, by
concept: ``engine`` (formula to deviance, shared by the frequentist fitters), ``inference``,
``lmm``, ``glmm``, ``nlmm``, ``bayes``, ``inla``, ``spatial``, ``gee``, ``study``,
``classroom``, ``datasets``, ``plots`` and ``compare`` (R beside Python); see
ARCHITECTURE.md in the repository.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "lmer": "companion.lmm.lmer", "make_deviance": "companion.lmm.lmer",
    "glmer": "companion.glmm.glmer", "bglmer": "companion.glmm.glmer",
    "glm": "companion.glmm.glm", "glmmml": "companion.glmm.ghq",
    "mcla": "companion.glmm.mcla", "hglm": "companion.glmm.hglm",
    "glmmpql": "companion.glmm.pql", "glmer_reml": "companion.glmm.glmm_reml",
    "nls": "companion.nlmm.nls", "NlsResult": "companion.nlmm.nls",
    "nlme": "companion.nlmm.nlme", "nlmer": "companion.nlmm.nlmer",
    "gee_fit": "companion.gee.estimating", "InlaResult": "companion.inla.model",
    "family": "companion.engine.families",
    "bootstrap": "companion.inference.bootmer", "BootResult": "companion.inference.bootmer",
    "power_sim": "companion.power", "power_curve": "companion.power",
    "extend": "companion.power", "PowerResult": "companion.power",
    "PowerCurve": "companion.power",
    "simulate": "companion.study.scenarios", "run_study": "companion.study.runner",
    "load_dataset": "companion.datasets.catalog", "list_datasets": "companion.datasets.catalog",
    "volcano_matrix": "companion.datasets.catalog",
    "reference": "companion.compare.tables", "chapter_table": "companion.compare.tables",
    "compare_printed": "companion.compare.tables", "compare_tight": "companion.compare.tables",
    "fit_quantities": "companion.compare.tables",
}
# public modules reachable as attributes without an import of their own
_MODULES = {name: f"companion.{name}" for name in (
    "bayes", "classroom", "compare", "datasets", "engine", "gee", "glmm", "inference", "inla",
    "lmm", "nlmm", "notebook", "plots", "power", "results", "spatial", "study")}
_MODULES["check"] = "companion.classroom.check"

__all__ = sorted([*_EXPORTS, *_MODULES, "__version__"])


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'companion' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
