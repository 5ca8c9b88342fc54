"""The words of the autograded assignments in each language: the headings and instructions
that :mod:`companion.classroom.otter_assignments` writes around the page's own text, and,
for the Chinese edition, what each answer variable holds (the English is ``Answer.what``
in :mod:`companion.classroom.otter_questions`)."""

from __future__ import annotations

from companion.classroom.check import VOLCANO_RMSE

TEMPLATES = {
    "en": {
        "exercise": "## Exercise",
        "question": "### Question `{name}` ({parts}; {points})",
        "part": "part {parts}", "parts": "parts {parts}",
        "point": "{n} point", "points": "{n} points",
        "manual": "*Graded by hand:* answer in words in the text cell below, and show the "
                  "code you ran.",
        "auto": '*Autograded:* set these variables. `grader.check("{name}")` runs the public '
                "tests (type and names); the grader's hidden tests check the numbers.",
        "what": "- `{name}`: {what}.",
        "number": "- `{name}`: {what}, a number.",
        "estimates": "- `{name}`: {what}; a dict (or a pandas Series) with the keys {keys}.",
    },
    "zh": {
        "exercise": "## 习题",
        "question": "### 问题 `{name}`（{parts}；{points}）",
        "part": "第 {parts} 部分", "parts": "第 {parts} 部分",
        "point": "{n} 分", "points": "{n} 分",
        "manual": "*人工评分：* 在下面的文本单元格中用文字作答，并展示你运行的代码。",
        "auto": '*自动评分：* 请设置下列变量。`grader.check("{name}")` 运行公开测试（检查类型和'
                "名称）；评分者手中的隐藏测试检查数值。",
        "what": "- `{name}`：{what}。",
        "number": "- `{name}`：{what}，一个数。",
        "estimates": "- `{name}`：{what}；一个 dict（或 pandas Series），键为 {keys}。",
    },
}

ANSWERS_ZH = {
    "train": "训练格点；`test` 为测试格点：两者都是含 `volcano` 各列（`row`、`col`、`height` "
             "……）的数据框，网格的每个格点恰好属于其中之一。用固定的随机种子划分，以便评分时"
             "能够重现",
    "held_out": "你的 GP 在测试格点（都不在 `train` 中）上的预测：含 `row`、`col`（与 "
                "`volcano` 相同）和 `prediction`（米）三列的数据框；按它与真实高度的 RMSE "
                f"评分，RMSE 须小于 {VOLCANO_RMSE:g} 米，与 `companion.check.volcano` 相同",
    "lm_coef": "固定效应拟合的系数，键与 R 的命名相同",
    "random_effects": "每组一个随机截距的 REML 拟合：截距、组效应的标准差和残差标准差",
    "group_predictions": "随机效应拟合对每组的预测（固定效应加上预测的随机效应），以组为键",
    "intercept_se": "固定效应拟合与随机效应拟合中截距的标准误",
    "glm_coef": "泊松 GLM 的系数，键与 R 的命名相同",
    "deviance_per_df": "GLM 的残差离差除以其残差自由度",
    "pql_coef": "PQL 拟合的固定效应",
    "laplace_coef": "拉普拉斯近似拟合的固定效应",
    "reml_coef": "REML 拟合的固定效应",
    "separate": "每种状态各自拟合得到的 Vm 和 K",
    "common_k": "Vm 带有平移 `delV`、K 共用的模型的估计值",
    "f_test_k": "在 Vm 的平移之外再检验 K 的平移时的 F 统计量 `F` 及其 p 值 `p`",
    "kriging": "REML 克里金拟合：均值、残差（总）标准差 `sigma`，以及其高斯相关结构中 nlme "
               "的 `range` 和 `nugget`",
}


def answer_text(name: str, what: str, language: str) -> str:
    """What an answer variable holds, in ``language``."""
    if language == "en":
        return what
    if name not in ANSWERS_ZH:
        raise ValueError(f"the answer {name!r} has no Chinese description: add it to "
                         "companion.classroom.otter_prompts.ANSWERS_ZH")
    return ANSWERS_ZH[name]
