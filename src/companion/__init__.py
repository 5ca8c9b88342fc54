"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python."""

from companion import plots
from companion.compare import chapter_table, compare_printed, fit_quantities, reference
from companion.inla import InlaResult, inla
from companion.datasets import list_datasets, load_dataset, volcano_matrix
from companion.lmer import lmer, make_deviance

__version__ = "0.1.0"

__all__ = ["InlaResult", "chapter_table", "compare_printed", "fit_quantities", "inla",
           "list_datasets", "lmer", "load_dataset", "make_deviance", "plots", "reference",
           "volcano_matrix", "__version__"]
