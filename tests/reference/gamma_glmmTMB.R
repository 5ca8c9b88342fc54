suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
d <- read.csv("gamma_sim.csv"); d$g <- factor(d$g)
tmb <- glmmTMB(y ~ x + (1 | g), data = d, family = Gamma(link = "log"))
tmb_tight <- update(tmb, control = glmmTMBControl(optCtrl = list(rel.tol = 1e-14, eval.max = 1e4, iter.max = 1e4)))
out <- list(call = "glmmTMB(y ~ x + (1 | g), data = gamma_sim, family = Gamma(link = 'log')), optCtrl rel.tol = 1e-14",
  packages = list(glmmTMB = as.character(packageVersion("glmmTMB")), TMB = as.character(packageVersion("TMB"))),
  r_version = R.version.string,
  fixef = as.list(fixef(tmb_tight)$cond), fixef_se = as.list(sqrt(diag(vcov(tmb_tight)$cond))),
  var_g = VarCorr(tmb_tight)$cond$g[1], sigma = sigma(tmb_tight),
  sigma_note = "glmmTMB's sigma for Gamma: the coefficient of variation, 1/sqrt(shape); dispersion phi = sigma^2",
  logLik = as.numeric(logLik(tmb_tight)))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "gamma_sim_glmmTMB.json")
