# lmerTest's single-model anova tables, types I, II and III, for LMMs of the corpus: the
# hypothesis matrices it tests for each fixed-effect term and the F tables it computes from
# them, for testing companion.hypotheses and companion's anova(fit, type = ...) against R.
#
# Run from this folder:   Rscript make_anova_types.R
# Reads the corpus's CSVs (../corpus, with schema.json for the factor levels and which
# factors are ordered); writes one <model>.json per model below, with
#   name, data, formula, REML, contrasts (the lmer call's contrasts argument: a name such as
#   "contr.sum" or a matrix as {column name: values}), call, packages, r_version, theta, sigma,
#   hypotheses  {"1": {term: L}, "2": {...}, "3": {...}}, L = attr(anova(fit, type), "hypotheses")
#               with rownames, colnames and values (a list of rows);
#   anova       {"Satterthwaite": {"1": table, "2": table, "3": table}, "Kenward-Roger": {...}}
#               (Kenward-Roger for REML fits only: lmerTest refuses it for ML fits),
#               table = {rownames, colnames, values} of anova(fit, type, ddf).

suppressPackageStartupMessages({
  library(lmerTest)
  library(jsonlite)
})
options(warn = 1)

CORPUS <- "../corpus"
schema <- fromJSON(file.path(CORPUS, "schema.json"), simplifyVector = FALSE)$datasets
TYPES <- c("1" = "I", "2" = "II", "3" = "III")

# A corpus data set with its factors (ordered ones too) in the schema's level order.
read_corpus <- function(name) {
  columns <- schema[[name]]$columns
  d <- read.csv(file.path(CORPUS, schema[[name]]$file), stringsAsFactors = FALSE)
  categorical <- names(columns)[vapply(columns, function(col) col$type %in% c("factor", "ordered"),
                                       logical(1))]
  for (col in categorical)
    d[[col]] <- factor(as.character(d[[col]]), levels = unlist(columns[[col]]$levels),
                       ordered = columns[[col]]$type == "ordered")
  d
}

MACHINE_CONTRASTS <- cbind(lin = c(-1, 0, 1), quad = c(1, -2, 1))
CAKE <- "(1 | recipe:replicate)"

MODELS <- list(
  list(name = "cake_reml_ordered", data = "cake", REML = TRUE,
       formula = paste("angle ~ recipe * temperature +", CAKE)),
  list(name = "cake_ml_ordered", data = "cake", REML = FALSE,
       formula = paste("angle ~ recipe * temperature +", CAKE)),
  list(name = "cake_reml_covariate", data = "cake", REML = TRUE,
       formula = paste("angle ~ recipe * temp +", CAKE)),
  list(name = "cake_reml_aliased", data = "cake", REML = TRUE,
       formula = paste("angle ~ recipe + temperature + temp +", CAKE)),
  list(name = "cake_reml_nested_factor", data = "cake", REML = TRUE,
       formula = paste("angle ~ recipe + recipe:temperature +", CAKE)),
  list(name = "cake_reml_no_intercept", data = "cake", REML = TRUE,
       formula = paste("angle ~ 0 + recipe + temperature +", CAKE)),
  list(name = "Machines_reml_nested", data = "Machines", REML = TRUE,
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  list(name = "Machines_reml_contrast_matrix", data = "Machines", REML = TRUE,
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
       contrasts = list(Machine = MACHINE_CONTRASTS)),
  list(name = "sim_partial_crossed_reml", data = "sim_partial_crossed", REML = TRUE,
       formula = "y ~ cond + (1 | subj) + (1 | item)"),
  list(name = "sleepstudy_reml_slope", data = "sleepstudy", REML = TRUE,
       formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "sleepstudy_reml_intercept_only", data = "sleepstudy", REML = TRUE,
       formula = "Reaction ~ 1 + (Days | Subject)"),
  list(name = "Orthodont_reml_sum", data = "Orthodont", REML = TRUE,
       formula = "distance ~ age * Sex + (age | Subject)",
       contrasts = list(Sex = "contr.sum")),
  list(name = "Orthodont_reml_nested_slopes", data = "Orthodont", REML = TRUE,
       formula = "distance ~ Sex + Sex:age + (age | Subject)")
)

# A matrix as row names, column names and a list of rows (a 1 x 1 matrix stays [[x]]).
matrix_json <- function(m) {
  list(rownames = I(as.character(rownames(m))), colnames = I(as.character(colnames(m))),
       values = unname(as.matrix(m) * 1.0))
}

# A named list as a JSON object, even when empty (lmerTest's intercept-only list is unnamed).
as_object <- function(x) {
  if (is.null(names(x))) setNames(list(), character(0)) else x
}

# The lmer call's contrasts for the JSON: names as they are, matrices by column.
contrasts_json <- function(contrasts) {
  lapply(contrasts, function(ctr) if (is.character(ctr)) ctr else as.list(as.data.frame(ctr)))
}

describe_call <- function(m) {
  ctr <- if (is.null(m$contrasts)) "" else
    paste0(", contrasts = ", paste(deparse(m$contrasts, width.cutoff = 500L), collapse = ""))
  sprintf("lmerTest::lmer(%s, data = %s, REML = %s%s, control = lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))",
          m$formula, m$data, m$REML, ctr)
}

anova_tables <- function(fit, ddf) {
  lapply(TYPES, function(type) matrix_json(as.matrix(anova(fit, type = type, ddf = ddf))))
}

for (m in MODELS) {
  fit <- lmerTest::lmer(as.formula(m$formula), data = read_corpus(m$data), REML = m$REML,
                        contrasts = m$contrasts,
                        control = lmerControl(optimizer = "bobyqa",
                                              optCtrl = list(rhoend = 1e-12, maxfun = 1e6)))
  hypotheses <- lapply(TYPES, function(type) {
    L_list <- attr(anova(fit, type = type, ddf = "Satterthwaite"), "hypotheses")
    as_object(lapply(L_list, matrix_json))
  })
  ddfs <- if (m$REML) c("Satterthwaite", "Kenward-Roger") else "Satterthwaite"
  out <- list(name = m$name, data = m$data, formula = m$formula, REML = m$REML,
              contrasts = as_object(contrasts_json(m$contrasts)),
              call = describe_call(m),
              packages = list(lmerTest = as.character(packageVersion("lmerTest")),
                              pbkrtest = as.character(packageVersion("pbkrtest")),
                              lme4 = as.character(packageVersion("lme4"))),
              r_version = R.version.string,
              theta = I(unname(getME(fit, "theta"))), sigma = sigma(fit),
              hypotheses = hypotheses,
              anova = setNames(lapply(ddfs, function(ddf) anova_tables(fit, ddf)), ddfs))
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
             paste0(m$name, ".json"))
  cat("wrote", m$name, "\n")
}
