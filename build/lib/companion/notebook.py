"""``glue`` for the book's notebook pages, wherever a reader runs them.

In the book's build this is myst-nb's ``glue`` (the value is stored in the page's outputs
and the prose cites it). A reader who downloads a page, or opens it on Colab or Binder, may
not have myst-nb; there the value is shown (or, with ``display=False``, only kept), so the
notebook runs the same from top to bottom.
"""

from __future__ import annotations

from typing import Any


def glue(name: str, variable: Any, display: bool = True) -> None:
    """myst-nb's ``glue(name, variable, display)`` when myst-nb is installed. A numpy
    scalar is glued as the Python number it holds: its text form (``np.float64(0.5)``
    under numpy 2) would not take a format such as ``:.2f`` in the prose."""
    if hasattr(variable, "item") and getattr(variable, "ndim", None) == 0:
        variable = variable.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(variable)
        return
    myst_glue(name, variable, display)
