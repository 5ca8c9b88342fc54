"""lme4 formulas: split into response, fixed part, offsets and random-effect terms.

``parse_formula`` reads the text only; ``companion.engine.design`` turns the parts into matrices.
Supported random terms, as the chapter and common practice write them:
``(x | g)``, ``(1 | g)``, ``(0 + x | g)``, ``(x || g)`` (uncorrelated), ``(1 | a/b)``
(nested: ``(1 | a) + (1 | a:b)``) and crossed terms side by side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class FormulaError(ValueError):
    """A formula the package cannot read; the message says what to change."""


@dataclass(frozen=True)
class RandomTerm:
    """One ``(expr | group)`` term: the model expression and the grouping factor(s)."""

    expr: str  # right-hand side of the random term, e.g. "1 + Days"
    group: tuple[str, ...]  # ("Subject",), or ("a", "b") for the interaction a:b

    @property
    def group_name(self) -> str:
        return ":".join(self.group)


@dataclass(frozen=True)
class ParsedFormula:
    response: str
    fixed: str  # right-hand side of the fixed part, for patsy
    random: tuple[RandomTerm, ...] = ()
    offsets: tuple[str, ...] = field(default=())


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if depth < 0:
            raise FormulaError(f"unbalanced parentheses in {text!r}")
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise FormulaError(f"unbalanced parentheses in {text!r}")
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _random_terms(inner: str) -> list[RandomTerm]:
    """Expand the inside of one ``( ... | ... )`` into random terms."""
    double = "||" in inner
    expr, _, group = inner.partition("||" if double else "|")
    expr, group = expr.strip(), group.strip()
    if not expr or not group:
        raise FormulaError(f"random term ({inner}) needs an expression and a grouping factor, "
                           "as in (1 | g) or (Days | Subject)")
    # nested grouping a/b/c -> c:b:a, b:a, a, named and ordered as lme4's expandSlash
    nested = [name.strip() for name in group.split("/")]
    groups = []
    for depth in range(len(nested), 0, -1):
        names = tuple(part.strip() for level in reversed(nested[:depth])
                      for part in level.split(":"))
        groups.append(names)
    exprs = _uncorrelated_pieces(expr) if double else [expr]
    return [RandomTerm(piece, names) for names in groups for piece in exprs]


def _uncorrelated_pieces(expr: str) -> list[str]:
    """``(1 + x || g)`` is ``(1 | g) + (0 + x | g)``, as lme4 expands it."""
    pieces = [p for p in split_top_level(expr, "+") if p]
    intercept = not any(p in {"0", "-1"} for p in pieces)
    terms = [p for p in pieces if p not in {"0", "1", "-1"}]
    return (["1"] if intercept else []) + [f"0 + {term}" for term in terms]


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 formula into its response, fixed part, random terms and offsets."""
    if not isinstance(formula, str):
        raise FormulaError(f"the formula must be a string, not {type(formula).__name__}")
    lhs, tilde, rhs = formula.partition("~")
    if not tilde or not lhs.strip() or not rhs.strip():
        raise FormulaError(f"{formula!r} is not a formula like 'y ~ x + (1 | g)': "
                           "it needs a response, '~' and a right-hand side")
    fixed, random, offsets = [], [], []
    for part in split_top_level(rhs, "+"):
        if not part:
            raise FormulaError(f"empty term in {formula!r}")
        match = re.fullmatch(r"\((.*)\)", part, flags=re.DOTALL)
        if match and "|" in match.group(1) and _is_single_group(part):
            random.extend(_random_terms(match.group(1)))
        elif re.fullmatch(r"offset\((.*)\)", part, flags=re.DOTALL):
            offsets.append(part[len("offset("):-1].strip())
        else:
            fixed.append(part)
    fixed_rhs = " + ".join(fixed) if fixed else "1"
    if fixed and all(p in {"0", "-1"} for p in fixed):
        fixed_rhs = "0"
    return ParsedFormula(lhs.strip(), fixed_rhs, tuple(random), tuple(offsets))


def _is_single_group(part: str) -> bool:
    """True when ``part`` is one parenthesised group, not e.g. ``(a)(b)``."""
    depth = 0
    for i, char in enumerate(part):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and i < len(part) - 1:
            return False
    return True
