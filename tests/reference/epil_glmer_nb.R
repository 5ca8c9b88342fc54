suppressPackageStartupMessages({library(lme4); library(MASS); library(glmmTMB); library(jsonlite)})
data(epil, package = "MASS")
f <- y ~ lbase * trt + lage + V4 + (1 | subject)
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5), tolPwrss = 1e-10)
nb <- glmer.nb(f, data = epil)
prof <- function(t) -2 * as.numeric(logLik(glmer(f, data = epil, family = MASS::negative.binomial(exp(t)), control = ctrl)))
opt <- optimize(prof, interval = log(getME(nb, "glmer.nb.theta")) + c(-1, 1), tol = 1e-10)
nbt <- glmer(f, data = epil, family = MASS::negative.binomial(exp(opt$minimum)), control = ctrl)
tmb <- glmmTMB(f, data = epil, family = nbinom2)
out <- list(call = "lme4::glmer.nb(y ~ lbase * trt + lage + V4 + (1 | subject), data = MASS::epil); tight: optimize() over log(theta) (tol 1e-10) of -2 logLik of glmer(..., family = negative.binomial(theta), control = glmerControl(optimizer = bobyqa, rhoend = 1e-10, maxfun = 1e5, tolPwrss = 1e-10)), the profile glmer.nb itself optimizes",
  packages = list(lme4 = as.character(packageVersion("lme4")), MASS = as.character(packageVersion("MASS"))),
  r_version = R.version.string,
  fixef = as.list(fixef(nbt)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(nbt))))),
  theta = as.list(getME(nbt, "theta")), nb_theta = exp(opt$minimum),
  logLik = as.numeric(logLik(nbt)),
  default_fit = list(fixef = as.list(fixef(nb)), nb_theta = getME(nb, "glmer.nb.theta"), logLik = as.numeric(logLik(nb))),
  glmmTMB_nbinom2 = list(fixef = as.list(fixef(tmb)$cond), nb_theta = sigma(tmb), logLik = as.numeric(logLik(tmb)), version = as.character(packageVersion("glmmTMB"))))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "epil_glmer_nb.json")
