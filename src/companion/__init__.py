"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python."""

from companion import plots
from companion.datasets import list_datasets, load_dataset, volcano_matrix
from companion.lmer import lmer, make_deviance

__version__ = "0.1.0"

__all__ = ["list_datasets", "lmer", "load_dataset", "make_deviance", "plots", "volcano_matrix",
           "__version__"]
