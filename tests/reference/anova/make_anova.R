# lme4's likelihood-ratio tables, anova(m0, m1, ...), for testing companion's anova.
#
# Run from this folder:   Rscript make_anova.R
# Reads the corpus's CSVs (../corpus, with schema.json for factor levels); writes one JSON
# per comparison: the models' formulas, family and REML flags, and anova()'s table (its
# rows in lme4's order, by number of parameters).

suppressPackageStartupMessages({
  library(lme4)
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

TIGHT_LMER <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))
TIGHT_GLMER <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                            tolPwrss = 1e-12)

COMPARISONS <- list(
  list(name = "sleepstudy_three_lmms", data = "sleepstudy", family = "gaussian", REML = TRUE,
       formulas = c("Reaction ~ Days + (1 | Subject)",
                    "Reaction ~ Days + (Days || Subject)",
                    "Reaction ~ Days + (Days | Subject)")),
  list(name = "partial_crossed_fixed_effect", data = "sim_partial_crossed", family = "gaussian",
       REML = FALSE,
       formulas = c("y ~ 1 + (1 | subj) + (1 | item)", "y ~ cond + (1 | subj) + (1 | item)")),
  list(name = "bernoulli_crossed_slope", data = "sim_bern_crossed", family = "binomial",
       REML = FALSE,
       formulas = c("y ~ x + (1 | subj) + (1 | item)", "y ~ x + (x | subj) + (1 | item)"))
)

for (m in COMPARISONS) {
  d <- load_data(m$data)
  fits <- lapply(m$formulas, function(f) {
    if (m$family == "gaussian") lmer(as.formula(f), data = d, REML = m$REML, control = TIGHT_LMER)
    else glmer(as.formula(f), data = d, family = m$family, control = TIGHT_GLMER)
  })
  tab <- do.call(anova, c(fits, list(refit = TRUE)))
  out <- list(name = m$name, data = m$data, family = m$family, REML = m$REML,
              formulas = I(m$formulas),
              packages = list(lme4 = as.character(packageVersion("lme4"))),
              r_version = R.version.string,
              note = "anova(m1, m2, ...) of tight fits; REML fits are refitted by ML, as lme4 does",
              colnames = I(colnames(tab)),
              values = unname(as.matrix(tab) * 1.0))
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
             paste0(m$name, ".json"))
  cat("wrote", m$name, "\n")
}
