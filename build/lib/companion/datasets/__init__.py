"""The chapter's data sets, shipped with the package (bit-exact exports from R 4.2.2), and
the simulated ones of the pages beyond the chapter."""

from companion.datasets.catalog import (
    LOADERS,
    Loblolly,
    PlantGrowth,
    Puromycin,
    cbpp,
    epil,
    list_datasets,
    load_dataset,
    sim_data,
    sim_data_truth,
    sim_partial_crossed,
    sleepstudy,
    topo,
    volcano,
    volcano_matrix,
)

__all__ = [
    "LOADERS",
    "Loblolly",
    "PlantGrowth",
    "Puromycin",
    "cbpp",
    "epil",
    "list_datasets",
    "load_dataset",
    "sim_data",
    "sim_data_truth",
    "sim_partial_crossed",
    "sleepstudy",
    "topo",
    "volcano",
    "volcano_matrix",
]
