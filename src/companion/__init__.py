"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python."""

from companion import check, plots
from companion.bootmer import BootResult, bootstrap
from companion.compare import (chapter_table, compare_printed, compare_tight, fit_quantities,
                               reference)
from companion.datasets import list_datasets, load_dataset, volcano_matrix
from companion.families import family
from companion.gee import gee_fit
from companion.ghq import glmmml
from companion.glm import glm
from companion.glmer import bglmer, glmer
from companion.glmm_reml import glmer_reml
from companion.hglm import hglm
from companion.inla import InlaResult, inla
from companion.lmer import lmer, make_deviance
from companion.mcla import mcla
from companion.nlme import nlme
from companion.nlmer import nlmer
from companion.nls import NlsResult, nls
from companion.power import PowerCurve, PowerResult, extend, power_curve, power_sim
from companion.pql import glmmpql
from companion.simulate import simulate
from companion.study import run_study

__version__ = "0.1.0"

__all__ = ["BootResult", "InlaResult", "NlsResult", "PowerCurve", "PowerResult",
           "__version__", "bglmer", "bootstrap", "chapter_table", "check",
           "compare_printed", "compare_tight", "extend", "family", "fit_quantities",
           "gee_fit", "glm",
           "glmer", "glmer_reml", "glmmml", "glmmpql", "hglm", "inla", "list_datasets", "lmer",
           "load_dataset", "make_deviance", "mcla", "nlme", "nlmer", "nls", "plots",
           "power_curve", "power_sim", "reference", "run_study", "simulate", "volcano_matrix"]
