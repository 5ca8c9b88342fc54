"""companion.notebook.glue hands myst-nb plain Python numbers, so that the prose's formats
(``{glue:text}`name:.2f```) apply to numpy scalars too."""

import numpy as np
import pytest

from companion import notebook

myst_nb = pytest.importorskip("myst_nb")


@pytest.mark.parametrize("value", [np.float64(0.0845), np.int64(7), np.float32(1.5)])
def test_numpy_scalars_are_glued_as_python_numbers(monkeypatch, value):
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, variable, display: seen.update(
        {name: variable}))
    notebook.glue("x", value, display=False)
    assert type(seen["x"]) in (float, int) and seen["x"] == value.item()
    assert format(seen["x"], ".2f") == f"{value.item():.2f}"


def test_other_values_pass_unchanged(monkeypatch):
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, variable, display: seen.update(
        {name: variable}))
    table = np.arange(3.0)
    notebook.glue("t", table, display=False)
    assert seen["t"] is table
