"""What the autograded assignments ask: for each exercise page, its questions, their points,
the variables a student sets and R's values that the hidden tests hold.

``python -m companion assignments --format otter`` (:mod:`companion.classroom.otter_assignments`)
turns each page and its entry in :data:`QUESTIONS` into an otter-grader master notebook.
A question covers one or more parts of the exercise, in the order of the page's worked
solution: from the line of the solution that contains ``starts_at`` (the first question
from the start) up to the next question's. A question with answers is autograded; one
without is graded by hand. To change a point value, edit ``points`` here; to change a
tolerance, ``rtol`` of an answer (the self-checks' :data:`companion.check.RELATIVE_TOLERANCE`
by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from companion.classroom.check import EXPECTED, RELATIVE_TOLERANCE, VOLCANO_RMSE
from companion.compare import reference

ESTIMATES = "estimates"  # a dict (or pandas Series) of named numbers, checked against R
NUMBER = "number"  # one number, checked against R
SPLIT = "split"  # volcano: training and test cells, together every cell once
HELD_OUT = "held_out"  # volcano: predictions at held-out cells, scored by their RMSE


@dataclass(frozen=True)
class Answer:
    """A variable the student sets. ``solution`` is the worked solution's code for it
    (``None`` when the page's solution already sets a variable of that name);
    ``expected`` returns R's values (a dict for estimates, a float for a number)."""

    name: str
    kind: str
    what: str
    solution: str | None = None
    expected: Callable[[], object] | None = None
    rtol: float = RELATIVE_TOLERANCE


@dataclass(frozen=True)
class Question:
    """A question of an assignment: the exercise's ``parts`` it covers, its points, where
    its worked solution starts, and its answers (none: graded by hand)."""

    name: str
    parts: tuple[int, ...]
    points: int
    starts_at: str | None
    answers: tuple[Answer, ...] = ()

    @property
    def manual(self) -> bool:
        return not self.answers


def _coef(name: str, key: str = "coef") -> Callable[[], dict[str, float]]:
    return lambda: dict(reference(name)[key])


def _self_check(exercise: str) -> Callable[[], dict[str, float]]:
    return EXPECTED[exercise][1]


def _group_predictions() -> dict[str, float]:
    r = reference("plantgrowth_lmer_reml")
    ranef = r["ranef"]["group"]
    return {level: r["fixef"]["(Intercept)"] + u
            for level, u in zip(ranef["levels"], ranef["(Intercept)"])}


def _intercept_se() -> dict[str, float]:
    return {"fixed": reference("plantgrowth_lm")["se"]["(Intercept)"],
            "random": reference("plantgrowth_lmer_reml")["fixef_se"]["(Intercept)"]}


def _deviance_per_df() -> float:
    r = reference("epil_glm_poisson")
    return r["deviance"] / r["df_residual"]


def _f_test_k() -> dict[str, float]:
    r = reference("puromycin_nls_state_on_Vm_and_K")["anova_vs_state_on_Vm"]
    return {"F": r["F"], "p": r["p_value"]}


def _kriging() -> dict[str, float]:
    r = reference("topo_gls_gauss_reml")
    return _self_check("topo")() | dict(r["corStruct_params"])


_VOLCANO_SPLIT = Answer(
    "train", SPLIT, "the training cells, and `test` the test cells: data frames with the "
    "columns of `volcano` (`row`, `col`, `height`, ...), each cell of the grid in one of "
    "them. Draw the split with a fixed seed, so that grading reproduces it")

QUESTIONS: dict[str, tuple[Question, ...]] = {
    "volcano": (
        Question("split", (1,), 2, None, (_VOLCANO_SPLIT,)),
        Question("held_out", (2, 3), 4, "**The model.**", (Answer(
            "held_out", HELD_OUT, "your GP's predictions at the test cells (none of them "
            "in `train`): a data frame with the columns `row` and `col` (as in `volcano`) "
            "and `prediction` (m); "
            f"graded by their RMSE against the true heights, which must be below "
            f"{VOLCANO_RMSE:g} m, as `companion.check.volcano` does",
            'test[["row", "col"]].assign(prediction=krige_test["mean"].to_numpy())'),)),
        Question("methods", (4,), 3, "**Speed, accuracy, ease of use.**"),
    ),
    "plantgrowth": (
        Question("fits", (1,), 4, None, (
            Answer("lm_coef", ESTIMATES, "the coefficients of the fixed-effect fit, keyed "
                   "as R names them",
                   '{"(Intercept)": fit_lm.params["Intercept"],\n'
                   ' "grouptrt1": fit_lm.params["group[T.trt1]"],\n'
                   ' "grouptrt2": fit_lm.params["group[T.trt2]"]}', _coef("plantgrowth_lm")),
            Answer("random_effects", ESTIMATES, "the REML fit with a random intercept per "
                   "group: its intercept, the SD of the group effects and the residual SD",
                   '{"intercept": fit_re.fixef["(Intercept)"],\n'
                   ' "sd_group": fit_re.varcorr.set_index("group").sdcor["group"],\n'
                   ' "sigma": fit_re.sigma}', _self_check("plantgrowth")))),
        Question("comparison", (2,), 3, "**The two fits side by side.**", (
            Answer("group_predictions", ESTIMATES, "the random-effect fit's prediction for "
                   "each group (fixed effect plus predicted random effect), keyed by group",
                   "dict(predictions)", _group_predictions),
            Answer("intercept_se", ESTIMATES, "the standard error of the intercept in the "
                   "fixed-effect fit and in the random-effect fit",
                   '{"fixed": fit_lm.bse["Intercept"], "random": fit_re.se["(Intercept)"]}',
                   _intercept_se))),
        Question("choice", (3,), 3, "**How well do three groups estimate"),
    ),
    "epil": (
        Question("glm", (1,), 3, None, (
            Answer("glm_coef", ESTIMATES, "the coefficients of the Poisson GLM, keyed as R "
                   "names them", "dict(fit_glm.fixef)", _coef("epil_glm_poisson")),
            Answer("deviance_per_df", NUMBER, "the GLM's residual deviance divided by its "
                   "residual degrees of freedom", "fit_glm.deviance / df_glm",
                   _deviance_per_df))),
        Question("glmm_fits", (2,), 4, "**A random intercept per patient.**", (
            Answer("pql_coef", ESTIMATES, "the fixed effects of the PQL fit",
                   "dict(fit_pql.fixef)", _coef("epil_glmmPQL_poisson", "fixef")),
            Answer("laplace_coef", ESTIMATES, "the fixed effects of the Laplace fit",
                   "dict(fit_laplace.fixef)", _self_check("epil")),
            Answer("reml_coef", ESTIMATES, "the fixed effects of the REML fit",
                   "dict(fit_reml.fixef)", _coef("epil_glmmTMB_reml", "fixef")))),
        Question("conclusions", (3,), 3, "**The five fits together.**"),
    ),
    "puromycin": (
        Question("figure", (1,), 1, None),
        Question("separate_fits", (2,), 3, "To put numbers beside R's", (
            Answer("separate", ESTIMATES, "Vm and K of each state's own fit",
                   '{"Vm_treated": fit_treated.fixef["Vm"], "K_treated": fit_treated.fixef["K"],'
                   '\n "Vm_untreated": fit_untreated.fixef["Vm"],\n'
                   ' "K_untreated": fit_untreated.fixef["K"]}', _self_check("puromycin")),)),
        Question("joint_fits", (3,), 4, "**Both states in one model.**", (
            Answer("common_k", ESTIMATES, "the estimates of the model with a shift `delV` in "
                   "Vm and a common K", "dict(fit_on_vm.fixef)",
                   _coef("puromycin_nls_state_on_Vm")),
            Answer("f_test_k", ESTIMATES, "the F statistic `F` and its p-value `p` of the "
                   "test of a shift in K, on top of the one in Vm",
                   '{"F": tests.loc[3, "F value"], "p": tests.loc[3, "Pr(>F)"]}',
                   _f_test_k))),
    ),
    "topo": (
        Question("gp_fits", (1, 2), 5, None, (
            Answer("kriging", ESTIMATES, "the REML kriging fit: the mean, the residual "
                   "(total) SD `sigma`, and nlme's `range` and `nugget` of its Gaussian "
                   "correlation",
                   '{"mean": krige_reml.beta, "sigma": krige_reml.sigma,\n'
                   ' "range": krige_reml.range, "nugget": krige_reml.nugget}', _kriging),)),
        Question("held_out", (3,), 3, "**Held-out points.**"),
    ),
}


def _checks(answer: Answer) -> str:
    if answer.kind == SPLIT:
        return "`train` and `test` hold each cell of the grid once, heights unchanged"
    if answer.kind == HELD_OUT:
        return (f"`{answer.name}`: RMSE against the true heights below {VOLCANO_RMSE:g} m, "
                "no training cell")
    count = "1 number" if answer.kind == NUMBER else f"{len(answer.expected())} numbers"
    return f"`{answer.name}`: {count} within {answer.rtol:.1%} of R's"


def question_rows() -> list[dict[str, object]]:
    """One row per question of every assignment: its exercise, name, part(s), points, how
    it is graded and what its hidden tests check (for the teacher's page)."""
    return [{"exercise": exercise, "question": question.name,
             "parts": ", ".join(map(str, question.parts)), "points": question.points,
             "graded": "by hand" if question.manual else "autograded",
             "hidden tests check": "; ".join(_checks(a) for a in question.answers) or "-"}
            for exercise, questions in QUESTIONS.items() for question in questions]
