# MASS::glmmPQL on sim_data with the offset in the formula (the chapter fits no PQL model
# to sim_data; section 8.5 says glmmPQL takes no offset, but an offset() term is honoured).
# Run from this folder: Rscript simdata_glmmPQL.R
suppressPackageStartupMessages({library(MASS); library(nlme); library(jsonlite)})
d <- read.csv("../../src/companion/datasets/data/sim_data.csv"); d$g <- factor(d$g)
fit <- glmmPQL(y ~ x1 + x2 + offset(log(o)), random = ~ 1 | g, family = poisson,
               data = d, verbose = FALSE)
without <- glmmPQL(y ~ x1 + x2, random = ~ 1 | g, family = poisson, data = d, verbose = FALSE)
out <- list(call = "MASS::glmmPQL(y ~ x1 + x2 + offset(log(o)), random = ~ 1 | g, family = poisson, data = sim_data)",
  packages = list(MASS = as.character(packageVersion("MASS")), nlme = as.character(packageVersion("nlme"))),
  r_version = R.version.string,
  fixef = as.list(fixef(fit)), fixef_se = as.list(summary(fit)$tTable[, "Std.Error"]),
  fixef_se_note = "summary()'s Std.Error, as glmmPQL prints it; vcov() gives them times sqrt((N - p) / N)",
  sd_g = sqrt(as.numeric(getVarCov(fit)[1, 1])), sigma = fit$sigma,
  without_offset_intercept = unname(fixef(without)[1]))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "simdata_glmmPQL.json")
