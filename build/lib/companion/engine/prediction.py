"""The linear predictor of a fitted LMM or GLMM for the fit's own rows or for new data, as
lme4's ``predict()`` builds it: the fixed effects from the model's formula (factor levels
as in the fit), the formula's offsets, and each row's random effects, looked up by the
levels of its grouping factors. A level the fit did not see is an error unless new levels
are allowed; then its random effects are zero (the population value), as lme4's
``allow.new.levels = TRUE``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from companion.engine.design import Design, eval_environment, formula_offset, r_column_name


class LinearPredictor:
    """``eta`` for new data from the fitted model's design; ``fit`` supplies the estimates."""

    def __init__(self, design: Design):
        self.design = design

    def __call__(self, fit, newdata: pd.DataFrame | None, random: bool,
                 allow_new_levels: bool = False) -> pd.Series:
        design = self.design
        data = design.frame if newdata is None else newdata
        eta = self.fixed_matrix(fit, data) @ fit.fixef.to_numpy()
        # the fit's rows keep every offset they were fitted with; new rows get the formula's
        eta = eta + (design.offset if newdata is None
                     else formula_offset(design.formula_offsets, data))
        if random:
            for block in design.blocks:
                eta = eta + self._random_part(fit, block, data, allow_new_levels)
        return pd.Series(eta, index=data.index, name="predicted")

    def fixed_matrix(self, fit, data: pd.DataFrame | None) -> np.ndarray:
        """The fixed-effects model matrix of ``data`` (the fit's rows when None), its
        columns in the order of ``fit.fixef``."""
        data = self.design.frame if data is None else data
        (fixed,) = patsy.build_design_matrices([self.design.fixed_info], data,
                                               return_type="dataframe")
        fixed.columns = [r_column_name(c) for c in fixed.columns]
        return fixed[fit.fixef.index].to_numpy()

    @staticmethod
    def _random_part(fit, block, data: pd.DataFrame, allow_new_levels: bool) -> np.ndarray:
        raw = patsy.dmatrix(block.expr, data, eval_env=eval_environment(),
                            return_type="dataframe").to_numpy()
        table = fit.ranef[block.group][block.columns]
        keys = data[list(block.term.group)].astype(str).agg(":".join, axis=1).to_numpy()
        known = pd.Index(table.index).get_indexer(keys) >= 0
        if not known.all() and not allow_new_levels:
            new = list(dict.fromkeys(keys[~known]))
            shown = ", ".join(map(repr, new[:5])) + (" ..." if len(new) > 5 else "")
            raise ValueError(f"new levels of {block.group!r} not in the fit: {shown} "
                             f"({len(new)} in all); pass allow_new_levels=True to predict "
                             "them at the population level (random effects zero), as "
                             "lme4's allow.new.levels = TRUE")
        effects = table.reindex(keys).fillna(0.0).to_numpy()
        return np.einsum("ij,ij->i", raw, effects)
