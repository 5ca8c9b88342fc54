"""Geostatistics for the chapter's topo and volcano data: kriging by ML or REML with a
nugget (``kriging``: nlme's ``gls`` with ``corGaus``), and Gaussian-process models in
PyMC (``gp``: cmdstanr's; imported on its own, as it loads PyMC)."""

from companion.spatial.kriging import (KERNELS, METHODS, KrigeFit, KrigingError, krige_fit,
                                       reference_table)

__all__ = ["KERNELS", "METHODS", "KrigeFit", "KrigingError", "krige_fit", "reference_table"]
