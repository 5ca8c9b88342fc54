# lme4's parametric bootstrap of sleepstudy's fixed effects, for testing companion's
# bootstrap within Monte Carlo error.
#
# Run from this folder:   Rscript make_boot.R
# Writes sleepstudy_bootmer.json: the fit's fixed effects and SEs, bootMer's 1000 draws
# summarised (mean, SD, 2.5% and 97.5% quantiles of each fixed effect) and the time taken.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
set.seed(2024)
fit <- lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy)
elapsed <- system.time(b <- bootMer(fit, fixef, nsim = 1000, seed = 2024))[["elapsed"]]
out <- list(
  call = "bootMer(lmer(Reaction ~ Days + (Days | Subject), sleepstudy), fixef, nsim = 1000, seed = 2024)",
  packages = list(lme4 = as.character(packageVersion("lme4"))),
  r_version = R.version.string,
  nsim = 1000, failures = sum(!complete.cases(b$t)),
  fixef = as.list(fixef(fit)), se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
  boot_mean = as.list(setNames(colMeans(b$t), names(fixef(fit)))),
  boot_sd = as.list(setNames(apply(b$t, 2, sd), names(fixef(fit)))),
  boot_q025 = as.list(setNames(apply(b$t, 2, quantile, 0.025), names(fixef(fit)))),
  boot_q975 = as.list(setNames(apply(b$t, 2, quantile, 0.975), names(fixef(fit)))),
  seconds = elapsed,
  seconds_note = "elapsed time of bootMer alone, R 4.2.2 with reference BLAS on a 2-core machine")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "sleepstudy_bootmer.json")
cat("bootMer took", elapsed, "s\n")
