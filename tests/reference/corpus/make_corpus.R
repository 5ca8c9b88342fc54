# Reference corpus of lme4 fits for testing the Python engine against R.
#
# Run from this folder:   Rscript make_corpus.R
# (optionally followed by model names to refit only those, e.g. `Rscript make_corpus.R cake_ml_ordered`;
#  the data sets, schema.json and SHA256SUMS are always rewritten).
#
# Writes, in the current folder:
#   <dataset>.csv      every data set used, doubles printed so that they read back exactly
#   schema.json        column types and factor levels (in R's order) of every CSV
#   SHA256SUMS         sha256sum of the CSVs
#   <model>.json       one file per fit (see README.md for the fields)

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(MASS)
})
options(warn = 1, stringsAsFactors = FALSE)
RNGkind("Mersenne-Twister", "Inversion", "Rejection")

args <- commandArgs(trailingOnly = TRUE)

PACKAGES <- list(
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  nlme = as.character(packageVersion("nlme")),
  MASS = as.character(packageVersion("MASS")),
  minqa = as.character(packageVersion("minqa")),
  nloptr = as.character(packageVersion("nloptr")),
  jsonlite = as.character(packageVersion("jsonlite")))
R_VERSION <- R.version.string
BLAS <- unname(extSoftVersion()["BLAS"])
if (!nzchar(BLAS)) BLAS <- La_library()

TIGHT_LMER <- "lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))"
TIGHT_GLMER <- function(tolPwrss) sprintf(
  "glmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12, maxfun = 1e6), tolPwrss = %s)", tolPwrss)

# a second, independent tight optimiser (NLopt's BOBYQA through lme4's nloptwrap) to show how well
# the optimum is pinned down; not part of the brief's tight refit
NLOPT_OPTCTRL <- "optCtrl = list(ftol_abs = 1e-14, ftol_rel = 1e-15, xtol_rel = 1e-12, xtol_abs = 1e-12, maxeval = 1e6)"
CROSS_LMER <- sprintf("lmerControl(optimizer = \"nloptwrap\", %s)", NLOPT_OPTCTRL)
CROSS_GLMER <- function(tolPwrss) sprintf("glmerControl(optimizer = \"nloptwrap\", %s, tolPwrss = %s)", NLOPT_OPTCTRL, tolPwrss)

logmsg <- function(...) cat(format(Sys.time(), "%H:%M:%S"), ..., "\n")

# ---------------------------------------------------------------------------------------------
# Numbers. CSVs: doubles with the fewest significant digits (15, 16 or 17) that read back to the
# same double (the data values are short decimals, so this mostly gives them as they are). JSON: see
# jnum() below (jsonlite alone stops at 15 significant digits).
# ---------------------------------------------------------------------------------------------
fmt_dbl <- function(x) {
  out <- rep(NA_character_, length(x))
  ok <- is.finite(x)
  if (!any(ok)) return(out)
  v <- x[ok]
  s <- sprintf("%.15g", v)
  for (d in 16:17) {
    bad <- as.numeric(s) != v
    if (!any(bad)) break
    s[bad] <- sprintf(paste0("%.", d, "g"), v[bad])
  }
  stopifnot(all(as.numeric(s) == v))
  out[ok] <- s
  out
}

# JSON numbers: integers as such, anything else with 17 significant digits. R's own string-to-double
# conversion is not always correctly rounded, so a shorter string that reads back in R can still be
# one unit in the last place off for a correctly rounding reader such as Python's; 17 digits never are.
jnum <- function(x) {
  s <- rep("null", length(x))
  ok <- is.finite(x)
  int <- ok & x == round(x) & abs(x) < 2^53
  s[int] <- sprintf("%.0f", x[int])
  s[ok & !int] <- sprintf("%.17g", x[ok & !int])
  s
}
jarr <- function(x) paste0("[", paste(jnum(x), collapse = ","), "]")
verb <- function(s) structure(s, class = "json")

# Turn a nested list into something jsonlite writes with full precision. Doubles become verbatim
# JSON text: a matrix -> array of rows, a named vector -> object, a length-one vector -> scalar
# unless wrapped in I() (then an array), a longer vector -> array.
prep <- function(x) {
  if (is.null(x)) return(NULL)
  if (is.data.frame(x)) x <- as.list(x)
  if (is.list(x)) {
    nm <- names(x)
    out <- lapply(x, prep)
    names(out) <- nm
    return(out)
  }
  if (is.double(x)) {
    asis <- inherits(x, "AsIs")
    if (is.matrix(x)) {
      rows <- vapply(seq_len(nrow(x)), function(i) jarr(x[i, ]), "")
      return(verb(paste0("[", paste(rows, collapse = ","), "]")))
    }
    x <- unclass(x)
    if (!is.null(names(x))) {
      out <- lapply(seq_along(x), function(i) verb(jnum(x[[i]])))
      names(out) <- names(x)
      return(out)
    }
    if (length(x) == 1 && !asis) return(verb(jnum(x)))
    return(verb(jarr(x)))
  }
  if (is.factor(x)) return(as.character(x))
  x
}

write_json_file <- function(obj, file) {
  txt <- toJSON(prep(obj), digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null",
                na = "null", json_verbatim = TRUE)
  writeLines(txt, file)
  invisible(file)
}

# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------
D <- new.env()
SCHEMA <- list()

as_plain_factor <- function(x) factor(as.character(x), levels = levels(x))  # drops "ordered", keeps order

export_data <- function(df, name, source, note, simulation = NULL) {
  df <- as.data.frame(df, stringsAsFactors = FALSE)
  attributes(df) <- attributes(df)[c("names", "row.names", "class")]
  row.names(df) <- NULL
  file <- paste0(name, ".csv")
  out <- df
  cols <- list()
  colclasses <- character()
  for (v in names(df)) {
    x <- df[[v]]
    if (is.factor(x)) {
      ord <- is.ordered(x)
      cols[[v]] <- list(type = if (ord) "ordered" else "factor", levels = I(levels(x)),
                        contrasts_default = if (ord) "contr.poly" else "contr.treatment",
                        n_missing = sum(is.na(x)))
      out[[v]] <- as.character(x)
      colclasses[v] <- "character"
    } else if (is.integer(x)) {
      cols[[v]] <- list(type = "integer", n_missing = sum(is.na(x)))
      colclasses[v] <- "integer"
    } else if (is.double(x)) {
      cols[[v]] <- list(type = "numeric", n_missing = sum(is.na(x)))
      out[[v]] <- fmt_dbl(x)
      colclasses[v] <- "numeric"
    } else if (is.logical(x)) {
      cols[[v]] <- list(type = "logical", n_missing = sum(is.na(x)))
      colclasses[v] <- "logical"
    } else stop("unsupported column type: ", name, "$", v)
  }
  qcols <- which(vapply(df, is.factor, TRUE))
  write.csv(out, file, row.names = FALSE, quote = if (length(qcols)) unname(qcols) else FALSE)
  # read it back and insist on an exact round trip
  back <- read.csv(file, colClasses = unname(colclasses), stringsAsFactors = FALSE)
  for (v in names(df)) {
    if (is.factor(df[[v]])) back[[v]] <- factor(back[[v]], levels = levels(df[[v]]), ordered = is.ordered(df[[v]]))
  }
  if (!identical(back, df)) stop("CSV round trip failed for ", name)
  SCHEMA[[name]] <<- c(list(file = file, source = source, nrow = nrow(df), ncol = ncol(df),
                            columns = cols, note = note),
                       if (!is.null(simulation)) list(simulation = simulation))
  assign(name, df, envir = D)
  invisible(df)
}

# correlated pair of normal random effects with sds s0, s1 and correlation r (no eigen/chol calls,
# so the draws do not depend on LAPACK)
corr_normals <- function(n, s0, s1, r) {
  z0 <- rnorm(n); z1 <- rnorm(n)
  cbind(s0 * z0, s1 * (r * z0 + sqrt(1 - r^2) * z1))
}

make_data <- function() {
  data("grouseticks", package = "lme4", envir = environment())
  export_data(grouseticks, "grouseticks", "lme4::grouseticks",
              "Ticks on red grouse chicks; all 7 columns as in lme4 (cHEIGHT is lme4's centred HEIGHT).")

  data("VerbAgg", package = "lme4", envir = environment())
  export_data(VerbAgg, "VerbAgg", "lme4::VerbAgg",
              "Verbal aggression items; all 9 columns (resp is an ordered factor, unused by the model; r2 is the binary response, level 'N' = failure).")

  data("InstEval", package = "lme4", envir = environment())
  export_data(InstEval[, c("y", "service", "s", "d", "dept")], "InstEval", "lme4::InstEval",
              "Lecture evaluations; only the columns used by the model (y, service, s, d, dept).")

  data("Penicillin", package = "lme4", envir = environment())
  export_data(Penicillin, "Penicillin", "lme4::Penicillin", "Penicillin assay, plate x sample fully crossed.")

  data("Pastes", package = "lme4", envir = environment())
  export_data(Pastes, "Pastes", "lme4::Pastes", "Paste strength, cask nested in batch (cask labels a-c repeat across batches).")

  data("cake", package = "lme4", envir = environment())
  export_data(cake, "cake", "lme4::cake", "Cake breaking angle; temperature is an ordered factor with 6 levels.")

  data("Dyestuff2", package = "lme4", envir = environment())
  export_data(Dyestuff2, "Dyestuff2", "lme4::Dyestuff2", "Simulated dyestuff yields whose batch variance estimate is zero.")

  data("sleepstudy", package = "lme4", envir = environment())
  export_data(sleepstudy, "sleepstudy", "lme4::sleepstudy", "Reaction times by days of sleep deprivation.")

  data("Orthodont", package = "nlme", envir = environment())
  O <- data.frame(distance = Orthodont$distance, age = Orthodont$age,
                  Subject = as_plain_factor(Orthodont$Subject), Sex = Orthodont$Sex)
  export_data(O, "Orthodont", "nlme::Orthodont",
              "Orthodontic growth; Subject (ordered in nlme) turned into a plain factor, keeping nlme's level order.")

  data("Machines", package = "nlme", envir = environment())
  M <- data.frame(Worker = as_plain_factor(Machines$Worker), Machine = Machines$Machine, score = Machines$score)
  export_data(M, "Machines", "nlme::Machines",
              "Machine productivity; Worker (ordered in nlme) turned into a plain factor, keeping nlme's level order.")

  data("bacteria", package = "MASS", envir = environment())
  export_data(bacteria, "bacteria", "MASS::bacteria", "H. influenzae presence in children with otitis media; y is a factor, level 'n' = failure.")

  # ---- simulations (each seeds its own stream) ----
  # 11: three-level nesting with a correlated random slope at the top level
  set.seed(20111)
  ns <- 30; nc <- 6; np <- 10; N <- ns * nc * np
  si <- rep(1:ns, each = nc * np)
  ci <- rep(rep(1:nc, each = np), times = ns)
  x <- round(rnorm(N), 3)
  U <- corr_normals(ns, 1.0, 0.5, 0.3)
  v <- rnorm(ns * nc, 0, 0.6)
  y <- round(2 + 0.5 * x + U[si, 1] + U[si, 2] * x + v[(si - 1) * nc + ci] + rnorm(N, 0, 1), 4)
  export_data(data.frame(y = y, x = x, school = factor(sprintf("S%02d", si)), class = factor(sprintf("C%d", ci))),
              "sim_school", "simulated in make_corpus.R",
              "30 schools x 6 classes x 10 pupils; class labels C1-C6 repeat across schools.",
              simulation = "set.seed(20111); x = round(N(0,1), 3); y = round(2 + 0.5 x + u0[school] + u1[school] x + v[school:class] + e, 4); (u0, u1) sds (1, 0.5), corr 0.3; v sd 0.6; e sd 1")

  # 12: Bernoulli, crossed subjects x items, correlated subject slope
  set.seed(20112)
  nsub <- 60; nit <- 40; N <- nsub * nit
  su <- rep(1:nsub, each = nit); it <- rep(1:nit, times = nsub)
  x <- round(rnorm(N), 3)
  U <- corr_normals(nsub, 1.0, 0.6, -0.4)
  w <- rnorm(nit, 0, 0.7)
  eta <- -0.2 + 0.8 * x + U[su, 1] + U[su, 2] * x + w[it]
  y <- rbinom(N, 1, plogis(eta))
  export_data(data.frame(y = y, x = x, subj = factor(sprintf("P%02d", su)), item = factor(sprintf("I%02d", it))),
              "sim_bern_crossed", "simulated in make_corpus.R",
              "60 subjects x 40 items, every pair once; y is 0/1.",
              simulation = "set.seed(20112); x = round(N(0,1), 3); y ~ Bernoulli(plogis(-0.2 + 0.8 x + u0[subj] + u1[subj] x + w[item])); (u0, u1) sds (1, 0.6), corr -0.4; w sd 0.7")

  # 13: Poisson with exposure offset and a correlated random slope
  set.seed(20113)
  ng <- 40; per <- 15; N <- ng * per
  g <- rep(1:ng, each = per)
  x <- round(runif(N, -1, 1), 3)
  expo <- round(runif(N, 0.5, 5), 2)
  U <- corr_normals(ng, 0.5, 0.3, 0.5)
  y <- rpois(N, expo * exp(0.2 + 0.4 * x + U[g, 1] + U[g, 2] * x))
  export_data(data.frame(y = y, x = x, expo = expo, g = factor(sprintf("G%02d", g))),
              "sim_pois_offset", "simulated in make_corpus.R",
              "40 groups x 15 rows; expo is an exposure entering as offset(log(expo)).",
              simulation = "set.seed(20113); x = round(U(-1,1), 3); expo = round(U(0.5,5), 2); y ~ Poisson(expo exp(0.2 + 0.4 x + u0[g] + u1[g] x)); (u0, u1) sds (0.5, 0.3), corr 0.5")

  # 14: partially crossed subjects x items
  set.seed(20114)
  nsub <- 80; nit <- 50; k <- 20
  su <- rep(1:nsub, each = k)
  it <- as.vector(vapply(1:nsub, function(i) sort(sample.int(nit, k)), integer(k)))
  N <- length(su)
  cond <- sample(c("A", "B", "C"), N, replace = TRUE)
  us <- rnorm(nsub, 0, 0.8); wi <- rnorm(nit, 0, 0.5)
  y <- round(1 + c(A = 0, B = 0.3, C = -0.2)[cond] + us[su] + wi[it] + rnorm(N), 4)
  export_data(data.frame(y = unname(y), cond = factor(cond, levels = c("A", "B", "C")),
                         subj = factor(sprintf("S%02d", su)), item = factor(sprintf("I%02d", it))),
              "sim_partial_crossed", "simulated in make_corpus.R",
              "80 subjects, 50 items, each subject sees 20 items drawn at random (1,600 rows); cond is a 3-level factor drawn per row.",
              simulation = "set.seed(20114); items per subject sort(sample.int(50, 20)); cond = sample(A,B,C); y = round(1 + (0, 0.3, -0.2)[cond] + u[subj] + w[item] + e, 4); sds u 0.8, w 0.5, e 1")

  # 15: binomial with trials per row (cbind)
  set.seed(20115)
  ng <- 30; per <- 8; N <- ng * per
  g <- rep(1:ng, each = per)
  n <- sample(5:30, N, replace = TRUE)
  x <- round(rnorm(N), 3)
  u <- rnorm(ng, 0, 0.6)
  succ <- rbinom(N, n, plogis(-0.5 + 0.7 * x + u[g]))
  export_data(data.frame(succ = succ, fail = n - succ, x = x, g = factor(sprintf("H%02d", g))),
              "sim_binom_cbind", "simulated in make_corpus.R",
              "30 groups x 8 rows; succ successes out of succ + fail trials (5 to 30).",
              simulation = "set.seed(20115); n = sample(5:30); x = round(N(0,1), 3); succ ~ Binomial(n, plogis(-0.5 + 0.7 x + u[g])); u sd 0.6")

  # 18: ordered dose x 2-level group, LMM
  set.seed(20118)
  ng <- 24; reps <- 2
  grid <- expand.grid(rep = 1:reps, grp = c("ctl", "trt"), dose = 1:4, g = 1:ng)
  N <- nrow(grid)
  u <- rnorm(ng, 0, 1)
  mu <- 10 + c(0, 0.5, 1.2, 1.5)[grid$dose] + 0.8 * (grid$grp == "trt") +
    c(0, 0.2, 0.5, 1.0)[grid$dose] * (grid$grp == "trt")
  y <- round(mu + u[grid$g] + rnorm(N, 0, 1.5), 4)
  export_data(data.frame(y = y,
                         dose = factor(c("none", "low", "mid", "high")[grid$dose], levels = c("none", "low", "mid", "high"), ordered = TRUE),
                         grp = factor(as.character(grid$grp), levels = c("ctl", "trt")),
                         g = factor(sprintf("G%02d", grid$g))),
              "sim_ordered_dose", "simulated in make_corpus.R",
              "24 groups x 4 doses x 2 arms x 2 replicates; dose is an ordered factor (none < low < mid < high).",
              simulation = "set.seed(20118); y = round(10 + (0,0.5,1.2,1.5)[dose] + 0.8 trt + (0,0.2,0.5,1.0)[dose] trt + u[g] + e, 4); u sd 1, e sd 1.5")

  # small Poisson for profile intervals (grouseticks' profile takes longer than 60 s here)
  set.seed(20120)
  ng <- 25; per <- 12; N <- ng * per
  g <- rep(1:ng, each = per)
  x <- round(rnorm(N), 3)
  u <- rnorm(ng, 0, 0.5)
  y <- rpois(N, exp(0.5 + 0.3 * x + u[g]))
  export_data(data.frame(y = y, x = x, g = factor(sprintf("G%02d", g))),
              "sim_pois_small", "simulated in make_corpus.R",
              "25 groups x 12 rows, Poisson counts; used for profile confidence intervals.",
              simulation = "set.seed(20120); x = round(N(0,1), 3); y ~ Poisson(exp(0.5 + 0.3 x + u[g])); u sd 0.5")
}

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
M <- list(
  list(name = "grouseticks_pois3", data = "grouseticks",
       call = "glmer(TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), data = grouseticks, family = poisson)",
       description = "Poisson GLMM with three scalar random intercepts (observation-level INDEX, BROOD, LOCATION); HEIGHT left uncentred as in the data.",
       covers = "poisson, log link, three scalar terms, nested/observation-level, Laplace", centre_check = TRUE),
  list(name = "VerbAgg_bern_crossed", data = "VerbAgg",
       call = "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), data = VerbAgg, family = binomial)",
       description = "Bernoulli GLMM, 316 subjects crossed with 24 items, factor response (N/Y).",
       covers = "binomial (Bernoulli), logit, crossed, factor response"),
  list(name = "InstEval_ml_crossed", data = "InstEval",
       call = "lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept), data = InstEval, REML = FALSE)",
       description = "Large crossed LMM (73,421 rows, 2,972 students x 1,128 lecturers x 14 departments), ML.",
       covers = "gaussian, large, crossed, ML", ntimed = 1, condvar = FALSE),
  list(name = "Penicillin_reml_crossed", data = "Penicillin",
       call = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin)",
       description = "Fully crossed plate x sample, intercept only, REML.",
       covers = "gaussian, crossed, intercept-only fixed part, REML"),
  list(name = "Pastes_reml_nested", data = "Pastes",
       call = "lmer(strength ~ 1 + (1 | batch/cask), data = Pastes)",
       description = "Cask nested in batch via the / operator (grouping factors cask:batch and batch), REML.",
       covers = "gaussian, nested (batch/cask), REML"),
  list(name = "cake_ml_ordered", data = "cake",
       call = "lmer(angle ~ recipe * temperature + (1 | recipe:replicate), data = cake, REML = FALSE)",
       description = "Ordered 6-level temperature (contr.poly: .L .Q .C ^4 ^5) in an interaction with recipe; grouping by the interaction recipe:replicate; ML.",
       covers = "gaussian, ordered factor (contr.poly) in interaction, interaction grouping factor, ML"),
  list(name = "Dyestuff2_reml_singular", data = "Dyestuff2",
       call = "lmer(Yield ~ 1 + (1 | Batch), data = Dyestuff2)",
       description = "Singular fit: the batch variance is estimated as zero.",
       covers = "gaussian, singular (boundary) fit, REML"),
  list(name = "Orthodont_ml_slope", data = "Orthodont",
       call = "lmer(distance ~ age * Sex + (age | Subject), data = Orthodont, REML = FALSE)",
       description = "Correlated random intercept and slope (vector-valued term), age x Sex interaction, ML.",
       covers = "gaussian, vector-valued correlated term, interaction numeric x factor, ML", newdata = "Orthodont"),
  list(name = "sleepstudy_reml_uncorr", data = "sleepstudy",
       call = "lmer(Reaction ~ Days + (Days || Subject), data = sleepstudy)",
       description = "Uncorrelated intercept and slope via the double-bar syntax, REML.",
       covers = "gaussian, || (independent terms on one factor), REML"),
  list(name = "Machines_reml_nested", data = "Machines",
       call = "lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), data = Machines)",
       description = "Worker and Worker:Machine random intercepts (nested interaction grouping), REML.",
       covers = "gaussian, nested via interaction grouping factor, REML"),
  list(name = "sim_school_reml_3level", data = "sim_school",
       call = "lmer(y ~ x + (x | school) + (1 | school:class), data = sim_school)",
       description = "Three-level nesting (pupils in classes in schools) with a correlated random slope at school level, REML.",
       covers = "gaussian, three-level nested, vector-valued term + scalar nested term, REML"),
  list(name = "sim_bern_crossed_slope", data = "sim_bern_crossed",
       call = "glmer(y ~ x + (x | subj) + (1 | item), data = sim_bern_crossed, family = binomial)",
       description = "Bernoulli GLMM, subjects crossed with items, correlated subject slope.",
       covers = "binomial (Bernoulli 0/1), crossed, vector-valued term, Laplace"),
  list(name = "sim_pois_offset_slope", data = "sim_pois_offset",
       call = "glmer(y ~ x + offset(log(expo)) + (x | g), data = sim_pois_offset, family = poisson)",
       description = "Poisson GLMM with an exposure offset in the formula and a correlated random slope.",
       covers = "poisson, offset, vector-valued term, Laplace", newdata = "sim_pois_offset"),
  list(name = "sim_partial_crossed_ml", data = "sim_partial_crossed",
       call = "lmer(y ~ cond + (1 | subj) + (1 | item), data = sim_partial_crossed, REML = FALSE)",
       description = "Partially crossed subjects and items (each subject sees 20 of 50 items), 3-level factor, ML.",
       covers = "gaussian, partially crossed, ML"),
  list(name = "sim_binom_cbind_int", data = "sim_binom_cbind",
       call = "glmer(cbind(succ, fail) ~ x + (1 | g), data = sim_binom_cbind, family = binomial)",
       description = "Binomial GLMM with trials per row (cbind response), 30 groups, numeric covariate.",
       covers = "binomial (cbind successes/failures), scalar term, Laplace, profile CI", confint = TRUE),
  list(name = "grouseticks_nb", data = "grouseticks",
       call = "glmer.nb(TICKS ~ YEAR + HEIGHT + (1 | LOCATION), data = grouseticks)",
       description = "Negative binomial GLMM (glmer.nb: outer search over the NB shape theta).",
       covers = "negative binomial, log link, scalar term"),
  list(name = "bacteria_bern", data = "bacteria",
       call = "glmer(y ~ trt + I(week > 2) + (1 | ID), data = bacteria, family = binomial)",
       description = "Bernoulli GLMM with a logical I() term (coefficient 'I(week > 2)TRUE') and a factor response (n/y).",
       covers = "binomial (Bernoulli), logical I() term, factor response"),
  list(name = "sim_ordered_dose_reml", data = "sim_ordered_dose",
       call = "lmer(y ~ dose * grp + (1 | g), data = sim_ordered_dose)",
       description = "Ordered 4-level dose (contr.poly) crossed with a 2-level factor, random intercept, REML.",
       covers = "gaussian, ordered factor (contr.poly) in interaction, REML"),
  list(name = "sleepstudy_ml_split", data = "sleepstudy",
       call = "lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), data = sleepstudy, REML = FALSE)",
       description = "Intercept and slope as two separate terms on the same factor (no correlation), ML.",
       covers = "gaussian, two terms on one factor, ML"),
  list(name = "sim_pois_small_int", data = "sim_pois_small",
       call = "glmer(y ~ x + (1 | g), data = sim_pois_small, family = poisson)",
       description = "Small Poisson GLMM with one random intercept; carries profile confidence intervals (the brief's grouseticks profile took more than 60 s).",
       covers = "poisson, scalar term, Laplace, profile CI", confint = TRUE),
  list(name = "Machines_reml_contrast_matrix", data = "Machines",
       call = "lmer(score ~ Machine + (1 | Worker) + (1 | Worker:Machine), data = Machines, contrasts = list(Machine = cbind(lin = c(-1, 0, 1), quad = c(1, -2, 1))))",
       description = "A contrast matrix of one's own with named columns (coefficients Machinelin, Machinequad), nested random intercepts, REML.",
       covers = "gaussian, user contrast matrix (named columns), REML"),
  list(name = "bacteria_bern_contrast_matrix", data = "bacteria",
       call = "glmer(y ~ trt + I(week > 2) + (1 | ID), data = bacteria, family = binomial, contrasts = list(trt = matrix(c(2, -1, -1, 0, 1, -1), 3, 2)))",
       description = "Bernoulli GLMM with an unnamed contrast matrix of one's own (coefficients trt1, trt2).",
       covers = "binomial (Bernoulli), user contrast matrix (unnamed columns)")
)

NEWDATA <- list(
  Orthodont = data.frame(age = c(8, 11.5, 14, 9, 12),
                         Subject = c("M01", "M16", "F03", "F11", "NEW"),
                         Sex = c("Male", "Male", "Female", "Female", "Female")),
  sim_pois_offset = data.frame(x = c(-0.5, 0, 0.25, 0.9, 0.3),
                               expo = c(1, 2.5, 0.7, 4, 1.5),
                               g = c("G01", "G02", "G17", "G40", "NEW"))
)

# ---------------------------------------------------------------------------------------------
# Helpers for fitting and summarising
# ---------------------------------------------------------------------------------------------
capture <- function(expr) {
  w <- character(); m <- character()
  val <- withCallingHandlers(expr,
    warning = function(c) { w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning") },
    message = function(c) { m <<- c(m, conditionMessage(c)); invokeRestart("muffleMessage") })
  list(value = val, warnings = I(w), messages = I(m))
}

quiet <- function(expr) suppressMessages(suppressWarnings(expr))

call_text <- function(cl) paste(deparse(cl, width.cutoff = 500L), collapse = " ")

mat_out <- function(m) {
  m <- as.matrix(m)
  list(rownames = I(rownames(m)), colnames = I(colnames(m)), values = unname(m * 1.0))
}

is_nb <- function(fit) grepl("^Negative Binomial", family(fit)$family)

sigma_or_null <- function(fit) if (isGLMM(fit)) NULL else sigma(fit)

objective_of <- function(fit) {
  if (isLMM(fit) && isREML(fit)) REMLcrit(fit) else -2 * as.numeric(logLik(fit))
}

varcorr_out <- function(fit) {
  vc <- VarCorr(fit)
  gf <- names(fit@cnms)
  out <- lapply(seq_along(vc), function(i) {
    m <- vc[[i]]
    list(grouping_factor = gf[i], terms = I(colnames(m)),
         cov = unname(unclass(m)[, , drop = FALSE] * 1.0),
         sd = setNames(as.numeric(attr(m, "stddev")), colnames(m)),
         corr = unname(as.matrix(attr(m, "correlation")) * 1.0))
  })
  names(out) <- names(vc)
  out
}

vcov_capture <- function(fit) {
  cv <- capture(as.matrix(vcov(fit)))
  list(vcov = cv$value, warnings = cv$warnings)
}

summary_block <- function(fit) {
  v <- vcov_capture(fit)
  b <- fixef(fit)
  out <- list(
    fixef = b,
    fixef_se = setNames(sqrt(diag(v$vcov)), names(b)),
    vcov_fixef = mat_out(v$vcov),
    vcov_warnings = v$warnings,
    theta = getME(fit, "theta"),
    sigma = sigma_or_null(fit),
    varcorr = varcorr_out(fit),
    logLik = as.numeric(logLik(fit)),
    objective = objective_of(fit),
    objective_is = if (isLMM(fit) && isREML(fit)) "REMLcrit" else "-2 logLik",
    is_singular = isSingular(fit))
  if (isGLMM(fit)) {
    rx <- capture(as.matrix(vcov(fit, use.hessian = FALSE)))
    out$vcov_fixef_RX <- mat_out(rx$value)
    out$vcov_fixef_RX_warnings <- rx$warnings
  }
  if ("sigma" %in% names(out) && is.null(out$sigma)) out["sigma"] <- list(NULL)
  out
}

conv_block <- function(fit) {
  oi <- fit@optinfo
  list(optimizer = I(as.character(oi$optimizer)), feval = oi$feval,
       optimizer_code = oi$conv$opt, optimizer_message = oi$message,
       optimizer_warnings = I(as.character(unlist(oi$warnings))),
       lme4_code = I(as.integer(unlist(oi$conv$lme4$code))),
       lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))))
}

ranef_out <- function(fit, condvar = TRUE) {
  re <- if (condvar) ranef(fit, condVar = TRUE) else ranef(fit)
  modes <- list(); csd <- list()
  for (g in names(re)) {
    df <- re[[g]]
    lv <- rownames(df)
    cols <- names(df)
    modes[[g]] <- setNames(lapply(seq_len(nrow(df)), function(i)
      setNames(vapply(cols, function(cc) df[[cc]][i], 0), cols)), lv)
    if (condvar) {
      pv <- attr(df, "postVar")
      sds <- if (is.list(pv)) {
        do.call(cbind, lapply(pv, function(a) sqrt(a[1, 1, ])))
      } else {
        do.call(cbind, lapply(seq_len(dim(pv)[1]), function(j) sqrt(pv[j, j, ])))
      }
      sds <- matrix(sds, nrow = nrow(df))
      stopifnot(ncol(sds) == length(cols))
      csd[[g]] <- setNames(lapply(seq_len(nrow(df)), function(i) setNames(sds[i, ], cols)), lv)
    }
  }
  list(modes = modes, condsd = if (condvar) csd else NULL)
}

maxabs <- function(a, b) if (is.null(a) || is.null(b)) NULL else max(abs(as.numeric(a) - as.numeric(b)))

tight_fit <- function(cl, fit_default, fun) {
  if (fun == "lmer") {
    tc <- cl; tc$control <- str2lang(TIGHT_LMER)
    cap <- capture(eval(tc, D))
    return(list(fit = cap$value, call = call_text(tc), control = TIGHT_LMER, cap = cap, tolPwrss = NULL))
  }
  if (fun == "glmer") {
    for (tol in c("1e-12", "1e-10")) {
      tc <- cl; tc$control <- str2lang(TIGHT_GLMER(tol))
      cap <- tryCatch(capture(eval(tc, D)), error = function(e) e)
      if (!inherits(cap, "error")) {
        return(list(fit = cap$value, call = call_text(tc), control = TIGHT_GLMER(tol), cap = cap,
                    tolPwrss = as.numeric(tol),
                    note = if (tol != "1e-12") "tolPwrss = 1e-12 failed; used 1e-10" else NULL))
      }
      logmsg("   tight glmer with tolPwrss", tol, "failed:", conditionMessage(cap))
    }
    stop("tight glmer failed")
  }
  if (fun == "glmer.nb") {
    # as tests/reference/epil_glmer_nb.R: maximise glmer.nb's profile over log(theta) tightly
    f <- cl[[2]]
    dname <- as.character(cl$data)
    for (tol in c("1e-12", "1e-10")) {
      ctrl_txt <- TIGHT_GLMER(tol)
      ctrl <- eval(str2lang(ctrl_txt))
      res <- tryCatch({
        prof <- function(t) -2 * as.numeric(logLik(quiet(glmer(eval(f), data = get(dname, D),
                                     family = MASS::negative.binomial(exp(t)), control = ctrl))))
        opt <- optimize(prof, interval = log(getME(fit_default, "glmer.nb.theta")) + c(-1, 1), tol = 1e-10)
        nbtheta <- exp(opt$minimum)
        tc <- call("glmer", f, data = as.name(dname), family = call("negative.binomial", nbtheta),
                   control = str2lang(ctrl_txt))
        cap <- capture(eval(tc, D))
        list(fit = cap$value, nb_theta = nbtheta, opt = opt, cap = cap, call = call_text(tc))
      }, error = function(e) e)
      if (!inherits(res, "error")) {
        return(list(fit = res$fit, call = paste0("optimize(-2 logLik of glmer(", deparse1(f),
                    ", family = negative.binomial(exp(t)), control = ", ctrl_txt,
                    ") over t = log(theta), interval log(glmer.nb theta) +/- 1, tol = 1e-10); final fit: ", res$call),
                    control = ctrl_txt, cap = res$cap, tolPwrss = as.numeric(tol), nb_theta = res$nb_theta,
                    note = if (tol != "1e-12") "tolPwrss = 1e-12 failed; used 1e-10" else NULL))
      }
      logmsg("   tight glmer.nb with tolPwrss", tol, "failed:", conditionMessage(res))
    }
    stop("tight glmer.nb failed")
  }
  stop("unknown function ", fun)
}

crosscheck_fit <- function(cl, fun, tf, fitT) {
  if (fun == "lmer") {
    cc <- cl; cc$control <- str2lang(CROSS_LMER)
  } else if (fun == "glmer") {
    cc <- cl; cc$control <- str2lang(CROSS_GLMER(format(tf$tolPwrss)))
  } else {
    cc <- call("glmer", cl[[2]], data = cl$data, family = call("negative.binomial", tf$nb_theta),
               control = str2lang(CROSS_GLMER(format(tf$tolPwrss))))
  }
  t0 <- proc.time()[["elapsed"]]
  cap <- tryCatch(capture(eval(cc, D)), error = function(e) e)
  if (inherits(cap, "error")) return(list(call = call_text(cc), error = conditionMessage(cap)))
  f <- cap$value
  list(call = call_text(cc),
       note = if (fun == "glmer.nb") "at the tight fit's NB theta" else NULL,
       fixef = fixef(f), theta = getME(f, "theta"), sigma = sigma_or_null(f),
       logLik = as.numeric(logLik(f)), objective = objective_of(f),
       logLik_minus_tight = as.numeric(logLik(f)) - as.numeric(logLik(fitT)),
       max_abs_fixef_vs_tight = maxabs(fixef(f), fixef(fitT)),
       max_abs_theta_vs_tight = maxabs(getME(f, "theta"), getME(fitT, "theta")),
       warnings = cap$warnings, messages = cap$messages, convergence = conv_block(f),
       seconds = proc.time()[["elapsed"]] - t0)
}

newdata_block <- function(fit, nd) {
  out <- list(newdata = nd, allow.new.levels = TRUE,
              note = "the last row has a grouping level not in the data (allow.new.levels = TRUE: its random effects are taken as zero)",
              link = unname(predict(fit, newdata = nd, type = "link", allow.new.levels = TRUE)),
              response = unname(predict(fit, newdata = nd, type = "response", allow.new.levels = TRUE)),
              link_re_form_NA = unname(predict(fit, newdata = nd, type = "link", re.form = NA)),
              response_re_form_NA = unname(predict(fit, newdata = nd, type = "response", re.form = NA)))
  out
}

run_model <- function(m) {
  logmsg("==>", m$name)
  cl <- str2lang(m$call)
  fun <- as.character(cl[[1]])
  ntimed <- if (is.null(m$ntimed)) 3L else m$ntimed

  # default fit (also the warm-up for the timings)
  t0 <- proc.time()[["elapsed"]]
  cap <- capture(eval(cl, D))
  fit <- cap$value
  t_first <- proc.time()[["elapsed"]] - t0
  logmsg("   default fit", round(t_first, 2), "s; warnings:", length(cap$warnings), "messages:", length(cap$messages))
  times <- vapply(seq_len(ntimed), function(i) system.time(quiet(eval(cl, D)))[["elapsed"]], 0)
  logmsg("   timed:", paste(times, collapse = " "))

  # tight refit
  t0 <- proc.time()[["elapsed"]]
  tf <- tight_fit(cl, fit, fun)
  t_tight <- proc.time()[["elapsed"]] - t0
  fitT <- tf$fit
  logmsg("   tight fit", round(t_tight, 2), "s")

  glmm <- isGLMM(fit)
  fam <- family(fit)
  X <- getME(fit, "X")
  ctr <- attr(X, "contrasts")
  sb <- summary_block(fit)
  tb <- summary_block(fitT)

  out <- list(
    name = m$name,
    description = m$description,
    covers = m$covers,
    call = m$call,
    data = paste0(m$data, ".csv"),
    formula = deparse1(cl[[2]], collapse = " "),
    formula_lme4 = deparse1(formula(fit), collapse = " "),
    family = if (is_nb(fit)) "negative.binomial" else fam$family,
    family_R = fam$family,
    link = fam$link,
    REML = isREML(fit),
    nAGQ = if (glmm) fit@devcomp$dims[["nAGQ"]] else NULL,
    packages = PACKAGES,
    r_version = R_VERSION,
    blas = BLAS,
    nobs = nobs(fit),
    ngroups = as.list(ngrps(fit)),
    X_colnames = I(colnames(X)),
    contrasts = if (is.null(ctr)) setNames(list(), character()) else lapply(ctr, function(z) if (is.character(z)) z else "matrix"),
    fixef = sb$fixef,
    fixef_se = sb$fixef_se,
    vcov_fixef = sb$vcov_fixef,
    vcov_note = if (glmm) "vcov(fit) as lme4 gives it by default (for glmer: from the finite-difference Hessian, use.hessian = TRUE); vcov_fixef_RX is vcov(fit, use.hessian = FALSE)" else "vcov(fit)",
    vcov_fixef_RX = sb$vcov_fixef_RX,
    vcov_fixef_RX_warnings = sb$vcov_fixef_RX_warnings,
    vcov_warnings = sb$vcov_warnings,
    theta = sb$theta,
    sigma = sb$sigma,
    varcorr = sb$varcorr,
    logLik = sb$logLik,
    logLik_df = as.integer(attr(logLik(fit), "df")),
    logLik_is_REML = isREML(fit),
    AIC = AIC(fit),
    BIC = BIC(fit),
    deviance = if (isLMM(fit)) (if (isREML(fit)) REMLcrit(fit) else deviance(fit)) else deviance(fit),
    deviance_note = if (isLMM(fit)) {
      if (isREML(fit)) "REMLcrit(fit) (the REML criterion, -2 REML log-likelihood)" else "deviance(fit) = -2 logLik (ML)"
    } else "deviance(fit) as lme4 gives it for a GLMM: the sum of squared deviance residuals at the conditional modes (not -2 logLik; see objective)",
    deviance_ML_at_REML_estimates = if (isLMM(fit) && isREML(fit)) deviance(fit, REML = FALSE) else NULL,
    objective = sb$objective,
    objective_is = sb$objective_is,
    is_singular = sb$is_singular,
    warnings = cap$warnings,
    messages = cap$messages,
    convergence = conv_block(fit))
  if (is_nb(fit)) out$nb_theta <- getME(fit, "glmer.nb.theta")
  for (k in c("sigma", "nAGQ")) if (is.null(out[[k]]) && !(k %in% names(out))) out[k] <- list(NULL)

  tb$call <- tf$call
  tb$control <- tf$control
  tb$tolPwrss <- tf$tolPwrss
  tb$note <- tf$note
  tb$warnings <- tf$cap$warnings
  tb$messages <- tf$cap$messages
  tb$convergence <- conv_block(fitT)
  tb$seconds <- t_tight
  if (!is.null(tf$nb_theta)) tb$nb_theta <- tf$nb_theta
  if (is.null(tb$sigma)) tb["sigma"] <- list(NULL)
  out$tight_optimum <- tb

  out$default_vs_tight <- list(
    max_abs_fixef = maxabs(sb$fixef, tb$fixef),
    max_abs_fixef_se = maxabs(sb$fixef_se, tb$fixef_se),
    max_abs_theta = maxabs(sb$theta, tb$theta),
    abs_sigma = maxabs(sb$sigma, tb$sigma),
    logLik_tight_minus_default = tb$logLik - sb$logLik,
    abs_nb_theta = if (is_nb(fit)) abs(out$nb_theta - tb$nb_theta) else NULL)

  out$crosscheck_nloptwrap <- crosscheck_fit(cl, fun, tf, fitT)
  if (is.null(out$crosscheck_nloptwrap$sigma)) out$crosscheck_nloptwrap["sigma"] <- list(NULL)
  logmsg("   crosscheck: logLik - tight =", signif(out$crosscheck_nloptwrap$logLik_minus_tight, 3))

  condvar <- if (is.null(m$condvar)) TRUE else m$condvar
  re <- ranef_out(fitT, condvar)
  out$ranef <- re$modes
  out$ranef_note <- "conditional modes ranef(fit) of the tight fit: grouping factor -> level -> term -> value"
  if (condvar) {
    out$ranef_condsd <- re$condsd
    out$ranef_condsd_note <- "tight fit: sqrt of the diagonal of attr(ranef(fit, condVar = TRUE)[[g]], 'postVar')"
  }
  out$fitted <- I(unname(fitted(fitT)[1:10]))
  out$fitted_note <- "first 10 fitted values of the tight fit, response scale"
  out$predict_link_first10 <- I(unname(predict(fitT, type = "link")[1:10]))

  out$lme4_seconds <- median(times)
  out$lme4_seconds_runs <- I(times)
  out$lme4_seconds_first_fit <- t_first
  out$lme4_seconds_note <- sprintf(
    "median elapsed time (system.time) of %d default fit(s) after one warm-up fit, measured with the installed R (%s, lme4 %s, reference BLAS) on this 2-core machine while other work may have been running",
    ntimed, R.version$version.string, PACKAGES$lme4)

  if (isTRUE(m$confint)) {
    logmsg("   profile confint")
    fitC <- quiet(eval(cl, D))   # a separate object: profiling changes a glmer object's internal state
    t0 <- proc.time()[["elapsed"]]
    ci <- capture(confint(fitC, method = "profile", oldNames = FALSE))
    tci <- proc.time()[["elapsed"]] - t0
    out$confint_profile <- list(call = "confint(fit, method = \"profile\", oldNames = FALSE) on a separate default fit",
                                level = 0.95, rownames = I(rownames(ci$value)),
                                lower = I(unname(ci$value[, 1])), upper = I(unname(ci$value[, 2])),
                                warnings = ci$warnings, messages = ci$messages, seconds = tci)
    logmsg("   confint", round(tci, 1), "s")
  }
  if (!is.null(m$newdata)) {
    nd <- NEWDATA[[m$newdata]]
    fitP <- quiet(eval(cl, D))   # again a separate default fit object
    out$newdata_predictions <- list(
      default_fit = newdata_block(fitP, nd),
      tight_fit = newdata_block(fitT, nd))
  }

  if (isTRUE(m$centre_check)) {
    # Same model with HEIGHT centred at its mean (a reparametrisation: the likelihood is identical),
    # fitted with the tight control and mapped back to the uncentred coefficients.
    gt <- get(m$data, D)
    mh <- mean(gt$HEIGHT)
    gt$HEIGHTc <- gt$HEIGHT - mh
    assign("grouseticks_c", gt, envir = D)
    cc <- str2lang(sub("HEIGHT", "HEIGHTc", sub("data = grouseticks", "data = grouseticks_c", m$call)))
    cc$control <- str2lang(CROSS_GLMER(format(tf$tolPwrss)))
    capc <- capture(eval(cc, D))
    fc <- capc$value
    bc <- fixef(fc)
    A <- diag(length(bc)); A[1, which(names(bc) == "HEIGHTc")] <- -mh
    b <- as.vector(A %*% bc); names(b) <- names(fixef(fit))
    V <- A %*% as.matrix(vcov(fc)) %*% t(A)
    out$centred_reparametrisation_check <- list(
      note = "HEIGHT centred at mean(HEIGHT) and refitted with the nloptwrap cross-check control (minqa's bobyqa at rhoend 1e-12 stops early on this version); coefficients and vcov mapped back to the uncentred parametrisation",
      call = call_text(cc), centre = mh,
      fixef = b, fixef_se = setNames(sqrt(diag(V)), names(b)), theta = getME(fc, "theta"),
      logLik = as.numeric(logLik(fc)),
      logLik_minus_tight = as.numeric(logLik(fc)) - tb$logLik,
      logLik_minus_default = as.numeric(logLik(fc)) - sb$logLik,
      warnings = capc$warnings, messages = capc$messages, convergence = conv_block(fc))
    rm("grouseticks_c", envir = D)
  }

  file <- paste0(m$name, ".json")
  write_json_file(out, file)
  logmsg("   wrote", file, "| default time", median(times), "s | max|d fixef|", signif(out$default_vs_tight$max_abs_fixef, 3),
         "| max|d theta|", signif(out$default_vs_tight$max_abs_theta, 3), "| dlogLik", signif(out$default_vs_tight$logLik_tight_minus_default, 3))
  invisible(out)
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
make_data()
write_json_file(list(generated_by = "make_corpus.R", r_version = R_VERSION, packages = PACKAGES,
                     rng = I(RNGkind()),
                     note = "type is numeric (double), integer, factor or ordered; levels are in R's order; CSVs print doubles with the fewest of 15/16/17 significant digits that read back exactly; factor columns are quoted strings",
                     datasets = SCHEMA), "schema.json")
csvs <- sort(list.files(pattern = "\\.csv$"))
system2("sha256sum", csvs, stdout = "SHA256SUMS")
logmsg("data sets written:", length(csvs))

todo <- if (length(args)) Filter(function(m) m$name %in% args, M) else M
if (length(args) && length(todo) != length(args)) stop("unknown model name(s): ", paste(setdiff(args, vapply(M, `[[`, "", "name")), collapse = ", "))
for (m in todo) run_model(m)
logmsg("done")
