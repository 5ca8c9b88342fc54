"""Mixed Models Companion: the data sets and fitting tools of the chapter, in Python."""

from companion import plots
from companion.datasets import list_datasets, load_dataset, volcano_matrix

__version__ = "0.1.0"

__all__ = ["list_datasets", "load_dataset", "plots", "volcano_matrix", "__version__"]
