"""What a fit returns: the protocol every frequentist fit follows (``protocol``) and the
mixed-model result of lme4's fitters with its subclasses (``mixed``)."""

from companion.results.mixed import (GlmmRemlResult, GlmmResult, MixedModelResult, PqlResult,
                                     Summary, build_mixed_result)
from companion.results.posterior import POSTERIOR_COLUMNS, lme4_name, posterior_table
from companion.results.protocol import (FitSummary, ModelResult, abbreviate, empty_varcorr,
                                        render_html, render_text, wald_intervals)

__all__ = ["POSTERIOR_COLUMNS", "FitSummary", "GlmmRemlResult", "GlmmResult",
           "MixedModelResult", "ModelResult", "PqlResult", "Summary", "abbreviate",
           "build_mixed_result", "empty_varcorr", "lme4_name", "posterior_table",
           "render_html", "render_text", "wald_intervals"]
