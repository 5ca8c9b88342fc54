# Profile confidence intervals of an intercept-only LMM, as lme4 computes them.
# Run from this folder: Rscript plantgrowth_lmer_confint.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
fit <- lmer(weight ~ 1 + (1 | group), data = PlantGrowth)
ci <- confint(fit)
out <- list(call = "confint(lme4::lmer(weight ~ 1 + (1 | group), data = PlantGrowth))",
            packages = list(lme4 = as.character(packageVersion("lme4"))),
            r_version = R.version.string, rownames = rownames(ci),
            lower = unname(ci[, 1]), upper = unname(ci[, 2]))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "plantgrowth_lmer_confint.json")
