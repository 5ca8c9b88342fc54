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


# the Bayesian fits sample and the book's tests read the built site: both are slow, so
# `pytest -m "not slow"` leaves them (and the tests marked slow one by one) out
SLOW_FOLDERS = {"bayes", "book"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
