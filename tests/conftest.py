"""The chapter's data sets as fixtures, loaded once per test module (``load_dataset``
returns a fresh copy, so a module may modify its own)."""

import pytest

import companion


def _dataset(name: str):
    @pytest.fixture(scope="module")
    def fixture():
        return companion.load_dataset(name)

    fixture.__doc__ = f"companion.load_dataset({name!r})"
    return fixture


sleepstudy = _dataset("sleepstudy")
cbpp = _dataset("cbpp")
epil = _dataset("epil")
sim = _dataset("sim_data")
loblolly = _dataset("Loblolly")
puromycin = _dataset("Puromycin")
plant = _dataset("PlantGrowth")
topo = _dataset("topo")
