# The random-intercept SD's Wald interval (log scale) of an ML (Laplace) Poisson GLMM, as
# glmmTMB's confint() gives it, for the study's Laplace intervals (companion.study_methods).
# Run from this folder: Rscript simdata_glmmTMB_sd_interval.R
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
d <- read.csv("../../src/companion/datasets/data/sim_data.csv"); d$g <- factor(d$g)
# glmmTMB's defaults converge here (rel.tol 1e-14 gives the same digits, with an nlminb warning)
tmb <- glmmTMB(y ~ x1 + x2 + (1 | g), offset = log(o), data = d, family = poisson)
ci <- confint(tmb, parm = "theta_", method = "wald")
sdr <- summary(tmb$sdr, "fixed")
out <- list(call = "confint(glmmTMB(y ~ x1 + x2 + (1 | g), offset = log(o), data = sim_data, family = poisson), parm = 'theta_', method = 'wald')",
  packages = list(glmmTMB = as.character(packageVersion("glmmTMB")), TMB = as.character(packageVersion("TMB"))),
  r_version = R.version.string,
  sd = unname(ci[1, 3]), lower = unname(ci[1, 1]), upper = unname(ci[1, 2]),
  log_sd_se = unname(sdr["theta", "Std. Error"]),
  logLik = as.numeric(logLik(tmb)))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "simdata_glmmTMB_sd_interval.json")
