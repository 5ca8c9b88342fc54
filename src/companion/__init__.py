"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python."""

from companion import plots
from companion.compare import compare_printed, fit_quantities, reference
from companion.datasets import list_datasets, load_dataset, volcano_matrix
from companion.lmer import lmer, make_deviance

__version__ = "0.1.0"

__all__ = ["compare_printed", "fit_quantities", "list_datasets", "lmer", "load_dataset",
           "make_deviance", "plots", "reference", "volcano_matrix", "__version__"]
