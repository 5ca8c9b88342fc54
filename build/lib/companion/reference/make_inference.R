# R's numbers for the book page "Beyond the chapter: inference" (book/inference.md):
# lmerTest's t and F tests with Satterthwaite's and Kenward-Roger's df, lme4's
# likelihood-ratio test, the Wald and parametric-bootstrap intervals, and ggeffects'
# population-level prediction bands, on sleepstudy and on a partially crossed design.
#
# Run by hand from this folder:   Rscript make_inference.R
# Reads the package's CSVs (../datasets/data/sleepstudy.csv and
# ../datasets/extra/sim_partial_crossed.csv); writes inference_sleepstudy.json and
# inference_crossed.json here. Needs lme4, lmerTest, pbkrtest, ggeffects and jsonlite
# (Debian: r-cran-lmertest, r-cran-pbkrtest, r-cran-ggeffects, r-cran-jsonlite).

suppressPackageStartupMessages({
  library(lmerTest)
  library(ggeffects)
  library(jsonlite)
})
options(warn = 1)

TIGHT <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))
NSIM <- 1000
SEED <- 101

tab <- function(x) {
  x <- as.data.frame(x)
  list(rownames = I(rownames(x)), colnames = I(colnames(x)),
       values = unname(as.matrix(x) * 1.0))
}

versions <- function()
  list(lme4 = as.character(packageVersion("lme4")),
       lmerTest = as.character(packageVersion("lmerTest")),
       pbkrtest = as.character(packageVersion("pbkrtest")),
       ggeffects = as.character(packageVersion("ggeffects")),
       r = R.version.string)

inference <- function(name, data, formula, null_formula, terms) {
  fit <- lmerTest::lmer(as.formula(formula), data = data, REML = TRUE, control = TIGHT)
  null <- lmerTest::lmer(as.formula(null_formula), data = data, REML = TRUE, control = TIGHT)
  lrt <- anova(null, fit)  # refits both by ML, as lme4 does
  set.seed(SEED)
  seconds <- system.time(
    boot <- bootMer(fit, fixef, nsim = NSIM, seed = SEED))[["elapsed"]]
  percentile <- t(sapply(seq_along(fixef(fit)), function(j)
    quantile(boot$t[, j], c(0.025, 0.975), type = 7)))
  rownames(percentile) <- names(fixef(fit))
  band <- as.data.frame(ggpredict(fit, terms = terms, type = "fixed"))
  list(name = name, formula = formula, null_formula = null_formula, REML = TRUE,
       packages = versions(),
       satterthwaite = tab(coef(summary(fit, ddf = "Satterthwaite"))),
       kenward_roger = tab(coef(summary(fit, ddf = "Kenward-Roger"))),
       anova3_satterthwaite = tab(anova(fit, type = 3, ddf = "Satterthwaite")),
       anova3_kenward_roger = tab(anova(fit, type = 3, ddf = "Kenward-Roger")),
       lrt = tab(lrt),
       wald = tab(confint(fit, parm = "beta_", method = "Wald")),
       bootstrap = list(nsim = NSIM, seed = SEED, seconds = seconds,
                        percentile = tab(percentile),
                        mean = unname(colMeans(boot$t)), sd = unname(apply(boot$t, 2, sd))),
       ggpredict = list(terms = terms, x = as.character(band$x), predicted = band$predicted,
                        conf_low = band$conf.low, conf_high = band$conf.high,
                        std_error = band$std.error))
}

sleep <- read.csv("../datasets/data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject, levels = as.character(sort(unique(sleep$Subject))))
crossed <- read.csv("../datasets/extra/sim_partial_crossed.csv", stringsAsFactors = TRUE)

out <- inference("sleepstudy", sleep, "Reaction ~ Days + (Days | Subject)",
                 "Reaction ~ 1 + (Days | Subject)", "Days [0:9]")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "inference_sleepstudy.json")
out <- inference("crossed", crossed, "y ~ cond + (1 | subj) + (1 | item)",
                 "y ~ 1 + (1 | subj) + (1 | item)", "cond")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "inference_crossed.json")
cat("wrote inference_sleepstudy.json, inference_crossed.json\n")

# A GLMM's band: ggpredict maps the link-scale interval through the inverse link.
cbpp <- read.csv("../datasets/data/cbpp.csv")
cbpp$period <- factor(cbpp$period)
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15))
gm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
            family = binomial,
            control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10,
                                   optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
band <- as.data.frame(ggpredict(gm, terms = "period", type = "fixed"))
out <- list(name = "cbpp", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            packages = versions(),
            ggpredict = list(terms = "period", x = as.character(band$x),
                             predicted = band$predicted, conf_low = band$conf.low,
                             conf_high = band$conf.high, std_error = band$std.error))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "inference_cbpp_band.json")
cat("wrote inference_cbpp_band.json\n")
