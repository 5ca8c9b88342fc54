"""Kenward-Roger against pbkrtest 0.5 through lmerTest 3.1 (``coef(summary(fit, ddf =
"Kenward-Roger"))``, tests/reference/ddf, made by make_ddf.R): sleepstudy, a crossed
design, a three-level nested one with a random slope, and nested factors. The method is
exact algebra at the REML estimates, so the two sides differ only through their
estimates (about 1e-7 relative here); every column is held to 1e-4 relative, the
p-values (as small as 1e-17) moving most.

The ``q x q`` formulation is also checked against pbkrtest's own ``n x n`` algebra,
written out below, on designs R does not cover here: prior weights, a correlated
vector term crossed with a scalar one, and an uncorrelated ``||`` pair."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from companion.inference.kenward_roger import (covariance_derivatives, kenward_roger,
                                               random_effects_matrix)
import companion
from corpus import load_data

DDF = Path(__file__).resolve().parents[1] / "reference" / "ddf"
MODELS = sorted(p.stem for p in DDF.glob("*.json")
                if "kenward_roger" in json.loads(p.read_text()))


@pytest.mark.parametrize("name", MODELS)
def test_kenward_roger_matches_pbkrtest(name):
    r = json.loads((DDF / f"{name}.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit's warning is tested elsewhere
        fit = companion.lmer(r["formula"], load_data(r["data"]), reml=True)
    table = fit.coef_table(ddf="Kenward-Roger")
    expected = r["kenward_roger"]
    assert list(table.index) == expected["rownames"]
    assert list(table.columns) == expected["colnames"]
    np.testing.assert_allclose(table.to_numpy(), np.array(expected["values"]), rtol=1e-4)


def _pbkrtest_dense(fit):
    """pbkrtest's ``vcovAdj`` with ``n x n`` matrices, as its R code does (the residual's
    G being ``W^-1``), and the df of each coefficient from ``Lb_ddf``."""
    design = fit.devfun.design
    Z = random_effects_matrix(design.blocks, design.n).toarray()
    X = design.X
    varcorr = fit.theta.to_numpy()
    templates = fit.devfun.layout.templates(varcorr)
    gammas = []
    for template in templates:
        cov = fit.sigma**2 * template @ template.T
        rows, cols = np.tril_indices(len(cov))
        order = np.lexsort((rows, cols))
        gammas.extend(cov[rows[order], cols[order]])
    G = [Z @ D.toarray() @ Z.T for D in covariance_derivatives(design.blocks)]
    G.append(np.diag(1 / design.weights))
    gammas.append(fit.sigma**2)
    Sigma = sum(g * Gi for g, Gi in zip(gammas, G))
    S = np.linalg.inv(Sigma)
    Phi = np.linalg.inv(X.T @ S @ X)
    H = [Gi @ S for Gi in G]
    O = [h @ X for h in H]
    P = [-(o.T @ S @ X) for o in O]
    k = len(G)
    Q = {(i, j): O[i].T @ S @ O[j] for i in range(k) for j in range(k)}
    info = np.array([[np.trace(H[i] @ H[j]) - 2 * np.sum(Phi * Q[i, j])
                      + np.trace(Phi @ P[i] @ Phi @ P[j]) for j in range(k)] for i in range(k)])
    W = 2 * np.linalg.inv(info)
    U = sum(W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j]) for i in range(k) for j in range(k))
    adjusted = Phi + 2 * Phi @ U @ Phi
    df = []
    for j in range(X.shape[1]):
        L = np.eye(X.shape[1])[[j]]
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ p @ Phi for p in P]
        A1 = sum(W[a, b] * np.trace(u[a]) * np.trace(u[b]) for a in range(k) for b in range(k))
        A2 = sum(W[a, b] * np.trace(u[a] @ u[b]) for a in range(k) for b in range(k))
        B = (A1 + 6 * A2) / 2
        g = (2 * A1 - 5 * A2) / (3 * A2)
        c1, c2, c3 = g / (3 + 2 * (1 - g)), (1 - g) / (3 + 2 * (1 - g)), (3 - g) / (3 + 2 * (1 - g))
        rho = ((1 - A2) / (1 - c2 * B)) ** 2 * (1 + c1 * B) / (1 - c3 * B)
        df.append(4 + 3 / (rho - 1))
    return Phi, adjusted, np.array(df)


def _design_data():
    rng = np.random.default_rng(2024)
    subjects, items = 14, 9
    data = [(s, i, rng.normal(), rng.integers(1, 4)) for s in range(subjects)
            for i in range(items) if rng.random() < 0.8]
    frame = pd.DataFrame(data, columns=["subj", "item", "x", "w"])
    frame["subj"] = "s" + frame["subj"].astype(str)
    frame["item"] = "i" + frame["item"].astype(str)
    u = rng.normal(size=(subjects, 2)) * [0.8, 0.4]
    v = rng.normal(size=items) * 0.6
    s_code = frame["subj"].str[1:].astype(int).to_numpy()
    i_code = frame["item"].str[1:].astype(int).to_numpy()
    frame["y"] = (1 + 0.5 * frame["x"] + u[s_code, 0] + u[s_code, 1] * frame["x"]
                  + v[i_code] + rng.normal(size=len(frame)) / np.sqrt(frame["w"]))
    return frame


@pytest.mark.parametrize("formula, weighted", [
    ("y ~ x + (x | subj) + (1 | item)", True),
    ("y ~ x + (x || subj) + (1 | item)", False),
])
def test_q_space_algebra_equals_pbkrtests_n_space(formula, weighted):
    data = _design_data()
    fit = companion.lmer(formula, data, weights=data["w"].to_numpy() if weighted else None)
    Phi, adjusted, df = _pbkrtest_dense(fit)
    adjustment = kenward_roger(fit)
    np.testing.assert_allclose(adjustment.vcov, Phi, rtol=1e-8)
    np.testing.assert_allclose(adjustment.vcov, fit.vcov.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(adjustment.adjusted, adjusted, rtol=1e-8)
    table = fit.coef_table(ddf="Kenward-Roger")
    np.testing.assert_allclose(table["df"], df, rtol=1e-8)
    assert np.all(table["Std. Error"] >= fit.se)  # the adjustment inflates


def test_kenward_roger_needs_reml_and_a_known_ddf():
    sleep = companion.load_dataset("sleepstudy")
    ml = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    with pytest.raises(ValueError, match="needs a REML fit"):
        ml.coef_table(ddf="Kenward-Roger")
    with pytest.raises(ValueError, match="'Satterthwaite', 'Kenward-Roger' or 'none'"):
        ml.coef_table(ddf="KR")
