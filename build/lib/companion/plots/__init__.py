"""The chapter's figures in matplotlib: the data and fits (``charts``, re-exported here),
the exercises' figures (``exercises``), the simulation page's (``simulation``) and the
spatial maps (``spatial``). Importing this package loads matplotlib."""

from companion.plots.charts import (bootstrap_intervals, cbpp_incidence, effect_band,
                                    estimates_by_method, group_panels, loblolly_growth,
                                    profile_curve, puromycin_rates, sleepstudy_lines,
                                    topo_points, volcano_image)

__all__ = ["bootstrap_intervals", "cbpp_incidence", "effect_band", "estimates_by_method",
           "group_panels", "loblolly_growth", "profile_curve", "puromycin_rates",
           "sleepstudy_lines", "topo_points", "volcano_image"]
