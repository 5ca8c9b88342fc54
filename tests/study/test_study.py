"""The simulated design (companion.simulate) and the simulation study (companion.study).

Small designs and few replicates, so the file runs in well under a minute."""

from __future__ import annotations

import os
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from companion.__main__ import main
from companion.study import runner as study
from companion.study.record import read_record, shipped_results
from companion.study.scenarios import SCENARIOS, Scenario, get_scenario, simulate
import companion
from reference import load, load_local

matplotlib.use("Agg")

TINY = Scenario("tiny", n_groups=8, group_size=12, sd=0.5)  # the chapter's model, smaller
NOT_TIMED = [c for c in study.COLUMNS if c != "seconds"]


def same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Identical except the wall-clock fit times."""
    pd.testing.assert_frame_equal(a[NOT_TIMED].reset_index(drop=True),
                                  b[NOT_TIMED].reset_index(drop=True), check_exact=True)


# --- the generator -------------------------------------------------------------------------

def test_chapter_design_shapes_and_columns():
    data = simulate(seed=2023)
    chapter = companion.load_dataset("sim_data")
    assert list(data.columns) == list(chapter.columns) == ["y", "x1", "x2", "o", "g"]
    assert data.shape == chapter.shape == (2500, 5)
    assert isinstance(data["g"].dtype, pd.CategoricalDtype)
    assert list(data["g"].cat.categories) == [str(k) for k in range(1, 26)]
    assert (data.groupby("g", observed=True).size() == 100).all()
    assert (data["g"].cat.codes.to_numpy() == np.repeat(np.arange(25), 100)).all()
    # o = 2 for the first half of the rows, 4 for the second, as rep(c(2, 4), each = N / 2)
    assert (data["o"].iloc[:1250] == 2).all() and (data["o"].iloc[1250:] == 4).all()
    assert data["y"].dtype == np.int64 and (data["y"] >= 0).all()
    pd.testing.assert_frame_equal(data, simulate(seed=2023))
    assert not data.equals(simulate(seed=2024))
    pd.testing.assert_frame_equal(data, SCENARIOS["chapter"].simulate(2023))


def test_generator_moments():
    data = simulate(n_groups=400, group_size=50, sd=0.5, seed=7)
    x = data[["x1", "x2"]]
    assert x.mean().abs().max() < 0.03
    assert np.allclose(x.std(), 1, atol=0.03)
    assert x.corr().iloc[0, 1] == pytest.approx(0.8, abs=0.02)
    # E[y / o] = exp(b0 + var(x'b) / 2 + sd^2 / 2)
    b = np.array([0.3, 0.2])
    var_xb = b @ np.array([[1, 0.8], [0.8, 1]]) @ b
    expected = np.exp(0.5 + var_xb / 2 + 0.25 / 2)
    assert (data["y"] / data["o"]).mean() == pytest.approx(expected, rel=0.08)
    # and a fit recovers the coefficients
    fit = companion.glmer("y ~ x1 + x2 + (1 | g)", data.iloc[:5000], family="poisson",
                          offset=np.log(data["o"].iloc[:5000].to_numpy()))
    assert fit.fixef.to_numpy() == pytest.approx([0.5, 0.3, 0.2], abs=0.2)


def test_binary_scenario():
    scen = get_scenario("binary-small")
    assert (scen.n_groups, scen.group_size, scen.sd, scen.family) == (100, 4, 1.5, "binomial")
    data = scen.simulate(1)
    assert data.shape == (400, 5)
    assert set(data["y"].unique()) <= {0, 1}
    assert (data["o"] == 1).all()
    assert 0.3 < data["y"].mean() < 0.8


def test_generator_options_and_errors():
    data = simulate(5, 3, beta=(0, 0, 0), sd=0, offset=(1, 2, 3), seed=1)
    assert data.shape == (15, 5) and list(data["o"]) == [1.0] * 5 + [2.0] * 5 + [3.0] * 5
    with pytest.raises(ValueError, match="family"):
        simulate(family="gaussian")
    with pytest.raises(ValueError, match="n_groups"):
        simulate(n_groups=0)
    with pytest.raises(ValueError, match="beta"):
        simulate(beta=(1, 2))
    with pytest.raises(ValueError, match="sd"):
        simulate(sd=-1)
    with pytest.raises(ValueError, match="offset"):
        simulate(offset=(0, 2))
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        get_scenario("nope")


# --- the methods ------------------------------------------------------------------------------

def test_laplace_sd_interval_is_glmmtmbs_wald_interval(sim):
    """The Laplace SD's interval: glmmTMB's confint(method = "wald") on sim_data
    (tests/reference/simdata_glmmTMB_sd_interval.R), to 1e-5 relative; the SE of log(SD)
    comes from the Hessian of our deviance, a numerical one (1e-6 steps)."""
    r = load_local("simdata_glmmTMB_sd_interval")
    estimate, se, lower, upper = study.FITTERS["laplace"](sim, "poisson")["sd_g"]
    assert estimate == pytest.approx(r["sd"], rel=1e-5)
    assert se / estimate == pytest.approx(r["log_sd_se"], rel=1e-5)
    assert (lower, upper) == pytest.approx((r["lower"], r["upper"]), rel=1e-5)


def test_aghq_sd_interval_and_none_for_pql(sim):
    _, se, lower, upper = study.FITTERS["aghq"](sim, "poisson")["sd_g"]
    r_sd = next(iter(load("simdata_glmer_agq11")["tight_optimum"]["theta"].values()))
    assert lower < r_sd < upper
    # with 100 counts per group the quadrature and Laplace curvatures agree closely
    assert se == pytest.approx(study.FITTERS["laplace"](sim, "poisson")["sd_g"][1], rel=1e-3)
    assert np.isnan(study.FITTERS["pql"](sim, "poisson")["sd_g"][2])


# --- the study -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def four_reps() -> pd.DataFrame:
    return study.run_study(TINY, 4, seed=11, workers=1, progress=False)


def test_study_rows(four_reps):
    res = four_reps
    assert list(res.columns) == study.COLUMNS
    assert len(res) == 4 * len(study.METHODS) * len(study.PARAMETERS)
    assert sorted(res["rep"].unique()) == [0, 1, 2, 3]
    assert (res["seed"] == 11).all() and (res["scenario"] == "tiny").all()
    fixed = res[res["parameter"] != "sd_g"]
    assert (res["error"] == "").all()
    assert fixed["estimate"].notna().all() and fixed["se"].notna().all()
    # the likelihood methods agree closely on these data
    x1 = fixed[fixed["parameter"] == "x1"].pivot(index="rep", columns="method",
                                                  values="estimate")
    assert np.allclose(x1["laplace"], x1["aghq"], atol=1e-3)
    gee = res[(res["method"] == "gee") & (res["parameter"] == "(Intercept)")]
    assert (gee["truth"] == 0.5 + 0.5**2 / 2).all()  # the marginal intercept
    # each replicate's seed is SeedSequence(seed).spawn(reps)[rep]
    child = np.random.SeedSequence(11).spawn(4)[2]
    alone = study.run_replicate(TINY, 2, child, study.METHODS)
    same_numbers(alone, res[res["rep"] == 2])


def test_same_numbers_with_two_workers(four_reps):
    two = study.run_study(TINY, 4, seed=11, workers=2, batch_size=2, progress=False)
    same_numbers(four_reps, two)


@pytest.mark.slow
def test_dask_cluster_gives_the_joblib_numbers(four_reps):
    if os.environ.get("CI"):  # CI installs the dev extras, which include dask's distributed
        import distributed
    else:
        distributed = pytest.importorskip(
            "distributed", reason="Dask's distributed is missing: `make test` installs it "
            "(the `study` extra)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            on_dask = study.run_study(TINY, 4, seed=11, scheduler=cluster.scheduler_address,
                                      progress=False)
    same_numbers(four_reps, on_dask)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_resume_computes_only_the_missing_replicates(tmp_path, monkeypatch, suffix):
    methods = ("laplace", "pql", "gee")
    whole = study.run_study(TINY, 8, seed=3, methods=methods, progress=False)
    out = tmp_path / f"study{suffix}"
    first = study.run_study(TINY, 4, seed=3, methods=methods, out=out, batch_size=3,
                            progress=False)
    assert sorted(study.load_results(out)["rep"].unique()) == [0, 1, 2, 3]
    same_numbers(first, whole[whole["rep"] < 4])
    done = []
    original = study.run_replicate

    def counting(scenario, rep, seed_seq, methods):
        done.append(rep)
        return original(scenario, rep, seed_seq, methods)

    monkeypatch.setattr(study, "run_replicate", counting)
    resumed = study.run_study(TINY, 8, seed=3, methods=methods, out=out, progress=False)
    assert sorted(done) == [4, 5, 6, 7]
    same_numbers(resumed, whole)
    same_numbers(study.load_results(out), whole)
    # nothing left to do: no fits at all, and a shorter request returns the first reps
    done.clear()
    again = study.run_study(TINY, 6, seed=3, methods=methods, out=out, progress=False)
    assert done == []
    same_numbers(again, whole[whole["rep"] < 6])
    # another seed or other methods do not silently mix with the file
    with pytest.raises(ValueError, match="seed"):
        study.run_study(TINY, 8, seed=4, methods=methods, out=out, progress=False)
    with pytest.raises(ValueError, match="methods"):
        study.run_study(TINY, 8, seed=3, methods=("laplace",), out=out, progress=False)


def test_failures_and_warnings_are_recorded(monkeypatch):
    def broken(data, family):
        raise RuntimeError("no convergence")

    def noisy(data, family):
        warnings.warn("boundary (singular) fit", UserWarning, stacklevel=1)
        return {"x1": (0.3, 0.1, 0.1, 0.5)}

    monkeypatch.setitem(study.FITTERS, "laplace", broken)
    monkeypatch.setitem(study.FITTERS, "pql", noisy)
    res = study.run_study(TINY, 2, seed=1, methods=("laplace", "pql", "gee"), progress=False)
    lap = res[res["method"] == "laplace"]
    assert (lap["error"] == "RuntimeError: no convergence").all()
    assert lap["estimate"].isna().all()
    pql = res[res["method"] == "pql"]
    assert (pql["warnings"] == "UserWarning: boundary (singular) fit").all()
    assert (res[res["method"] == "gee"]["error"] == "").all()
    table = study.summarise(res)
    row = table[(table["method"] == "laplace") & (table["parameter"] == "x1")].iloc[0]
    assert row["n_failed"] == 2 and row["n_ok"] == 0 and np.isnan(row["bias"])


def test_summary_and_figure(four_reps):
    table = study.summarise(four_reps)
    assert len(table) == len(study.METHODS) * len(study.PARAMETERS)
    for column in ("bias", "bias_mcse", "rmse", "rmse_mcse", "coverage", "coverage_mcse",
                   "seconds_per_fit"):
        assert column in table.columns
    lap = table[(table["method"] == "laplace") & (table["parameter"] == "x2")].iloc[0]
    est = four_reps[(four_reps["method"] == "laplace") & (four_reps["parameter"] == "x2")]
    assert lap["bias"] == pytest.approx((est["estimate"] - 0.2).mean())
    assert lap["rmse"] == pytest.approx(np.sqrt(((est["estimate"] - 0.2) ** 2).mean()))
    covered = (est["lower"] <= 0.2) & (0.2 <= est["upper"])
    assert lap["coverage"] == pytest.approx(covered.mean())
    # the SD has an interval from every method but PQL and GEE (which has no SD)
    sd = table[table["parameter"] == "sd_g"].set_index("method")
    assert sd["coverage"].notna().tolist() == [m not in ("pql", "gee") for m in sd.index]
    assert set(study.timing(four_reps)["method"]) == set(study.METHODS)
    fig = study.plot_study(table)
    assert len(fig.axes) == 8
    matplotlib.pyplot.close(fig)


def test_study_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown scenario"):
        study.run_study("nope", 2)
    with pytest.raises(ValueError, match="unknown methods"):
        study.run_study(TINY, 2, methods=("laplace", "mcmc"))
    with pytest.raises(ValueError, match="reps"):
        study.run_study(TINY, 0)
    with pytest.raises(ValueError, match="workers"):
        study.run_study(TINY, 2, workers=0)
    with pytest.raises(ValueError, match="seed"):
        study.run_study(TINY, 2, seed=-1)
    with pytest.raises(ValueError, match="out must end"):
        study.run_study(TINY, 2, out=tmp_path / "results.xlsx")
    with pytest.raises(ValueError, match="scheduler"):
        study.run_study(TINY, 2, scheduler="", progress=False)


# --- the command line ---------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "binary.csv"
    args = ["simulate", "--scenario", "binary-small", "--reps", "2", "--out", str(out),
            "--seed", "5", "--methods", "laplace,gee", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "laplace" in printed and "coverage" in printed and "2 replicates" in printed
    res = study.load_results(out)
    assert sorted(res["rep"].unique()) == [0, 1] and set(res["method"]) == {"laplace", "gee"}
    same_numbers(res, study.run_study("binary-small", 2, seed=5, methods=("laplace", "gee"),
                                      workers=2, progress=False))
    record = read_record(out)  # checks the file's SHA-256 against the record
    assert record["command"] == "python -m companion " + " ".join(args)
    assert (record["scenario"], record["reps"], record["seed"]) == ("binary-small", 2, 5)
    assert record["methods"] == ["laplace", "gee"] and record["rows"] == len(res)
    assert record["versions"]["numpy"] == np.__version__
    out.write_bytes(out.read_bytes() + b"\n")
    with pytest.raises(ValueError, match="does not match its record"):
        read_record(out)


# --- the study shipped with the package ----------------------------------------------------------

def test_shipped_study_is_complete_and_matches_its_records():
    results, records = shipped_results()
    assert set(records) == set(SCENARIOS)
    for scenario, record in records.items():
        rows = results[results["scenario"] == scenario]
        assert len(rows) == record["rows"] == record["reps"] * len(record["methods"]) * 4
        assert sorted(rows["rep"].unique()) == list(range(record["reps"]))
        assert record["command"].startswith("python -m companion simulate")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_slice_of_the_shipped_study_is_reproduced(scenario):
    """Replicates 0 and 1 fitted again give the shipped rows: the same draws, the same
    failures and warnings, and the same estimates and intervals up to the optimizers' own
    tolerance (rtol 1e-6: another CPU's last bits may move an optimizer's end point, never
    by as much as that)."""
    results, records = shipped_results()
    record = records[scenario]
    shipped = results[(results["scenario"] == scenario) & (results["rep"] < 2)]
    children = np.random.SeedSequence(record["seed"]).spawn(record["reps"])
    again = pd.concat([study.run_replicate(scenario, rep, children[rep],
                                           tuple(record["methods"])) for rep in (0, 1)])
    keys = ["rep", "method", "parameter", "truth", "error", "warnings"]
    pd.testing.assert_frame_equal(again[keys].reset_index(drop=True),
                                  shipped[keys].reset_index(drop=True))
    for column in ("estimate", "se", "lower", "upper"):
        np.testing.assert_allclose(again[column], shipped[column], rtol=1e-6, atol=1e-10,
                                   err_msg=column)


def test_cli_errors(tmp_path, capsys):
    out = str(tmp_path / "x.parquet")
    assert main(["simulate", "--scenario", "nope", "--reps", "2", "--out", out]) == 1
    assert "unknown scenario 'nope'" in capsys.readouterr().err
    assert main(["simulate", "--scenario", "chapter", "--reps", "0", "--out", out]) == 1
    assert "reps must be a positive integer" in capsys.readouterr().err
    assert main(["simulate", "--scenario", "chapter", "--reps", "2", "--out", out,
                 "--methods", "laplace,bogus"]) == 1
    assert "unknown methods" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --reps must be an integer
        main(["simulate", "--scenario", "chapter", "--reps", "many", "--out", out])
    with pytest.raises(SystemExit):  # --out is required
        main(["simulate", "--scenario", "chapter", "--reps", "2"])


def test_marginal_mean_of_the_figure():
    """The marginal-vs-conditional figure's average over groups: exact for the log link
    (exp(eta + sd^2 / 2)), and the logit link's attenuation approximation to 1%."""
    from companion.plots.simulation import marginal_mean, marginal_vs_conditional

    eta = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(marginal_mean(eta, 0.5, "log"), np.exp(eta + 0.125), rtol=1e-12)
    c = 16 * np.sqrt(3) / (15 * np.pi)
    approx = 1 / (1 + np.exp(-eta / np.sqrt(1 + c**2 * 1.5**2)))
    np.testing.assert_allclose(marginal_mean(eta, 1.5, "logit"), approx, atol=0.01)
    axes = marginal_vs_conditional([("a", "log", 0.5, 0.3, 0.5), ("b", "logit", 0.5, 0.8, 1.5)])
    assert axes.shape == (1, 2) and axes[0, 0].get_yscale() == "log"
    matplotlib.pyplot.close("all")
