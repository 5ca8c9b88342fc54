"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python."""

from companion import check, plots
from companion.compare import (chapter_table, compare_printed, compare_tight, fit_quantities,
                               reference)
from companion.datasets import list_datasets, load_dataset, volcano_matrix
from companion.families import family
from companion.glm import glm
from companion.glmer import bglmer, glmer
from companion.glmm_reml import glmer_reml
from companion.inla import InlaResult, inla
from companion.lmer import lmer, make_deviance
from companion.nlme import nlme
from companion.nlmer import nlmer
from companion.nls import NlsResult, nls
from companion.pql import glmmpql

__version__ = "0.1.0"

__all__ = ["InlaResult", "bglmer", "chapter_table", "check", "compare_printed", "compare_tight", "family",
           "fit_quantities", "glm", "glmer", "glmer_reml", "glmmpql", "inla",
           "list_datasets", "lmer", "load_dataset", "make_deviance", "nlme", "nlmer", "nls", "NlsResult",
           "plots", "reference",
           "volcano_matrix", "__version__"]
