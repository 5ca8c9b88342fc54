# lmerTest's and pbkrtest's fixed-effect tables for LMMs of the corpus, for testing
# companion's denominator degrees of freedom against R.
#
# Run from this folder:   Rscript make_ddf.R
# Reads the corpus's CSVs (../corpus, with schema.json for factor levels); writes one
# <model>.json per model: coef(summary(fit, ddf = "Satterthwaite")) and, for REML fits,
# coef(summary(fit, ddf = "Kenward-Roger")), as row names, column names and values.

suppressPackageStartupMessages({
  library(lmerTest)
  library(jsonlite)
})
options(warn = 1)

CORPUS <- "../corpus"
schema <- fromJSON(file.path(CORPUS, "schema.json"), simplifyVector = FALSE)$datasets

load_data <- function(name) {
  info <- schema[[name]]
  d <- read.csv(file.path(CORPUS, info$file), stringsAsFactors = FALSE)
  for (col in names(info$columns)) {
    spec <- info$columns[[col]]
    if (spec$type %in% c("factor", "ordered"))
      d[[col]] <- factor(as.character(d[[col]]), levels = unlist(spec$levels),
                         ordered = spec$type == "ordered")
  }
  d
}

MODELS <- list(
  list(name = "sleepstudy_reml_slope", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  list(name = "sleepstudy_ml_uncorr", data = "sleepstudy",
       formula = "Reaction ~ Days + (Days || Subject)", REML = FALSE),
  list(name = "sim_partial_crossed_reml", data = "sim_partial_crossed",
       formula = "y ~ cond + (1 | subj) + (1 | item)", REML = TRUE),
  list(name = "sim_school_reml_3level", data = "sim_school",
       formula = "y ~ x + (x | school) + (1 | school:class)", REML = TRUE),
  list(name = "Machines_reml_nested", data = "Machines",
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", REML = TRUE)
)

table_of <- function(fit, ddf) {
  tab <- coef(summary(fit, ddf = ddf))
  list(rownames = I(rownames(tab)), colnames = I(colnames(tab)),
       values = unname(tab * 1.0))
}

for (m in MODELS) {
  d <- load_data(m$data)
  fit <- lmerTest::lmer(as.formula(m$formula), data = d, REML = m$REML,
                        control = lmerControl(optimizer = "bobyqa",
                                              optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))
  out <- list(name = m$name, data = m$data, formula = m$formula, REML = m$REML,
              call = sprintf("lmerTest::lmer(%s, data = %s, REML = %s, control = lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))",
                             m$formula, m$data, m$REML),
              packages = list(lmerTest = as.character(packageVersion("lmerTest")),
                              pbkrtest = as.character(packageVersion("pbkrtest")),
                              lme4 = as.character(packageVersion("lme4"))),
              r_version = R.version.string,
              theta = unname(getME(fit, "theta")), sigma = sigma(fit),
              satterthwaite = table_of(fit, "Satterthwaite"))
  if (m$REML) out$kenward_roger <- table_of(fit, "Kenward-Roger")
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             paste0(m$name, ".json"))
  cat("wrote", m$name, "\n")
}
