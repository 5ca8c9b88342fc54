# lme4's parametric bootstrap of two GLMMs' fixed effects, for testing companion's
# bootstrap of glmer fits within Monte Carlo error: cbpp (binomial, trials per row) and
# the corpus's sim_pois_small (Poisson, one random intercept).
#
# Run from this folder:   Rscript make_boot_glmm.R
# Writes <name>_bootmer.json: the fit's fixed effects, bootMer's 1000 draws summarised
# (mean, SD, quartiles, 2.5% and 97.5% quantiles of each fixed effect: a binomial
# replicate near separation gives heavy tails, so the quartiles are the robust summary)
# and the time taken.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
TIGHT <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
                      optCtrl = list(rhoend = 1e-10, maxfun = 1e5))

summarise <- function(name, call, fit, nsim = 1000, seed = 2024) {
  elapsed <- system.time(b <- bootMer(fit, fixef, nsim = nsim, seed = seed))[["elapsed"]]
  nm <- names(fixef(fit))
  out <- list(call = call, packages = list(lme4 = as.character(packageVersion("lme4"))),
              r_version = R.version.string, nsim = nsim,
              failures = sum(!complete.cases(b$t)), fixef = as.list(fixef(fit)),
              boot_mean = as.list(setNames(colMeans(b$t, na.rm = TRUE), nm)),
              boot_sd = as.list(setNames(apply(b$t, 2, sd, na.rm = TRUE), nm)),
              boot_q025 = as.list(setNames(apply(b$t, 2, quantile, 0.025, na.rm = TRUE), nm)),
              boot_q975 = as.list(setNames(apply(b$t, 2, quantile, 0.975, na.rm = TRUE), nm)),
              boot_q25 = as.list(setNames(apply(b$t, 2, quantile, 0.25, na.rm = TRUE), nm)),
              boot_median = as.list(setNames(apply(b$t, 2, median, na.rm = TRUE), nm)),
              boot_q75 = as.list(setNames(apply(b$t, 2, quantile, 0.75, na.rm = TRUE), nm)),
              seconds = elapsed)
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             paste0(name, "_bootmer.json"))
  cat(name, ": bootMer took", elapsed, "s\n")
}

cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15))
summarise("cbpp", "bootMer(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial), fixef, nsim = 1000, seed = 2024)",
          glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
                family = binomial, control = TIGHT))
pois <- read.csv("../corpus/sim_pois_small.csv", stringsAsFactors = TRUE)
summarise("sim_pois_small", "bootMer(glmer(y ~ x + (1 | g), sim_pois_small, poisson), fixef, nsim = 1000, seed = 2024)",
          glmer(y ~ x + (1 | g), data = pois, family = poisson, control = TIGHT))
