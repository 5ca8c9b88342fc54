"""The test cells of an autograded question, as otter-grader reads them: public tests of an
answer's type, names and shape, and hidden tests of its numbers.

A hidden test holds R's values (or, for the volcano, the true heights) as literals, taken
from :mod:`companion.classroom.otter_questions` when the master notebook is written:
``otter assign`` strips hidden tests from the student notebook, and grading never reads the
values from the installed package, which a submission could change. Tests are plain
``assert`` statements, so that they print nothing when they pass.
"""

from __future__ import annotations

import base64

import numpy as np

from companion.classroom.check import VOLCANO_RMSE
from companion.classroom.otter_questions import ESTIMATES, HELD_OUT, NUMBER, SPLIT, Answer

HIDDEN_CONFIG = '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'


def expected_values(answer: Answer) -> object:
    """R's values for ``answer`` (a dict of floats, or a float), checked to be numbers."""
    if answer.expected is None:
        raise ValueError(f"answer {answer.name!r} of kind {answer.kind!r} needs R's values")
    values = answer.expected()
    if answer.kind == NUMBER:
        return float(values)
    return {str(key): float(value) for key, value in dict(values).items()}


def public_tests(answer: Answer) -> list[str]:
    """The public test cells of ``answer``: its type, its names, its shape."""
    if answer.kind == ESTIMATES:
        keys = sorted(expected_values(answer))
        name = answer.name
        return [f"assert isinstance({name}, dict) or hasattr({name}, 'to_dict'), "
                f"'{name} should be a dict (or a pandas Series)'\n"
                f"assert sorted(dict({name})) == {keys!r}, '{name} should have the keys "
                f"{', '.join(keys)}'\n",
                "import math, numbers\n"
                f"assert all(isinstance(v, numbers.Real) and math.isfinite(v) for v in "
                f"dict({name}).values()), 'each value of {name} should be a finite number'\n"]
    if answer.kind == NUMBER:
        return ["import math, numbers\n"
                f"assert isinstance({answer.name}, numbers.Real) and "
                f"math.isfinite({answer.name}), '{answer.name} should be a finite number'\n"]
    if answer.kind == SPLIT:
        return ["import pandas as pd\n"
                "assert isinstance(train, pd.DataFrame) and isinstance(test, pd.DataFrame), "
                "'train and test should be data frames'\n"
                "assert {'row', 'col', 'height'} <= set(train.columns) & set(test.columns), "
                "'train and test should have the columns row, col and height of volcano'\n"]
    if answer.kind == HELD_OUT:
        name = answer.name
        return ["import pandas as pd\n"
                f"assert isinstance({name}, pd.DataFrame) and "
                f"{{'row', 'col', 'prediction'}} <= set({name}.columns), '{name} should be "
                "a data frame with the columns row, col and prediction'\n"
                f"assert len({name}) >= 50, 'hold out at least 50 cells'\n"
                f"assert {name}['row'].between(1, 87).all() and "
                f"{name}['col'].between(1, 61).all(), 'row and col should be those of "
                "volcano (1 to 87 and 1 to 61)'\n"]
    raise ValueError(f"unknown kind of answer {answer.kind!r} ({answer.name})")


def hidden_tests(answer: Answer, heights: np.ndarray | None = None) -> list[str]:
    """The hidden test cells of ``answer``: its numbers against R's within ``answer.rtol``
    (the volcano's against the true ``heights``, the 87 x 61 grid)."""
    if answer.kind == ESTIMATES:
        name, expected = answer.name, expected_values(answer)
        return [HIDDEN_CONFIG + "import numpy as np\n"
                f"_expected = {expected!r}\n"
                f"_off = [k for k, v in _expected.items() if not np.isclose(float(dict({name})"
                f"[k]), v, rtol={answer.rtol!r}, atol=0)]\n"
                f"assert not _off, f'{name}: not within {answer.rtol:.1%} of R for {{_off}}'\n"]
    if answer.kind == NUMBER:
        return [HIDDEN_CONFIG + "import numpy as np\n"
                f"assert np.isclose(float({answer.name}), {expected_values(answer)!r}, "
                f"rtol={answer.rtol!r}, atol=0), '{answer.name}: not within "
                f"{answer.rtol:.1%} of R'\n"]
    if heights is None:
        raise ValueError(f"answer {answer.name!r} of kind {answer.kind!r} needs the heights")
    truth = (HIDDEN_CONFIG + "import base64\nimport numpy as np\n"
             f"_heights = np.frombuffer(base64.b64decode('{_encode(heights)}'), "
             f"dtype=np.uint8).reshape{heights.shape!r}.astype(float)\n")
    if answer.kind == SPLIT:
        return [truth + "import pandas as pd\n"
                "_cells = lambda frame: set(zip(frame['row'], frame['col']))\n"
                "assert not _cells(train) & _cells(test), 'train and test share cells'\n"
                f"assert len(train) + len(test) == {heights.size} and "
                f"len(_cells(train) | _cells(test)) == {heights.size}, 'train and test "
                "should hold each cell of the grid once'\n"
                "assert len(test) >= 50, 'keep at least 50 test cells'\n"
                "_both = pd.concat([train, test])\n"
                "assert np.array_equal(_both['height'].to_numpy(float), "
                "_heights[_both['row'].to_numpy() - 1, _both['col'].to_numpy() - 1]), "
                "'the heights of train and test should be those of volcano'\n"]
    if answer.kind == HELD_OUT:
        name = answer.name
        return [truth + f"_rows = {name}['row'].to_numpy() - 1\n"
                f"_cols = {name}['col'].to_numpy() - 1\n"
                "_seen = set(zip(train['row'] - 1, train['col'] - 1))\n"
                "assert not _seen & set(zip(_rows, _cols)), 'held-out cells must not be "
                "training cells'\n"
                f"_rmse = float(np.sqrt(np.mean((_heights[_rows, _cols] - "
                f"{name}['prediction'].to_numpy(float)) ** 2)))\n"
                f"assert _rmse < {VOLCANO_RMSE!r}, f'the held-out RMSE is {{_rmse:.1f}} m, "
                f"above {VOLCANO_RMSE:g} m'\n"]
    raise ValueError(f"unknown kind of answer {answer.kind!r} ({answer.name})")


def _encode(heights: np.ndarray) -> str:
    """The heights (whole metres, 0 to 255) as base64 bytes, one per cell in row order."""
    values = np.asarray(heights)
    if not (np.array_equal(values, np.round(values)) and values.min() >= 0
            and values.max() <= 255):
        raise ValueError("the heights must be whole numbers from 0 to 255 to be embedded")
    return base64.b64encode(values.astype(np.uint8).tobytes()).decode("ascii")
