"""The shipped data sets against R's export: files, values bit for bit, types and levels."""

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import companion
from companion.datasets import LOADERS, _io
from corpus import load_data

R_CHECKSUMS = Path(__file__).resolve().parents[1] / "reference" / "r_export_SHA256SUMS"
NAMES = ["sleepstudy", "cbpp", "Loblolly", "PlantGrowth", "Puromycin", "volcano", "epil",
         "topo", "sim_data", "sim_partial_crossed"]
CHAPTER = NAMES[:-1]  # R's export; sim_partial_crossed comes from the test corpus


def _r_checksums():
    pairs = (line.split() for line in R_CHECKSUMS.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


@pytest.mark.parametrize("filename", sorted(_r_checksums()))
def test_shipped_file_is_rs_export(filename):
    shipped = (_io.DATA_DIR / filename).read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == _r_checksums()[filename]


def test_every_data_set_is_listed_and_loadable():
    assert companion.list_datasets() == NAMES
    assert set(_r_checksums()) >= {_io.schema()[name]["file"] for name in CHAPTER}


def _parse_export(name):
    """Parse R's CSV with the standard library only: an independent reading of the file."""
    spec = _io.schema()[name]
    text = spec["path"].read_text(encoding="ascii")
    rows = list(csv.reader(io.StringIO(text)))
    return spec, rows[0], rows[1:]


@pytest.mark.parametrize("name", NAMES)
def test_values_are_bit_identical_to_r(name):
    spec, header, rows = _parse_export(name)
    frame = companion.load_dataset(name)
    assert list(frame.columns) == header
    for j, column in enumerate(header):
        raw = [row[j] for row in rows]
        kind = spec["columns"][column]["type"]
        if kind == "double":
            expected = np.array([float(v) for v in raw], dtype=np.float64)
            got = frame[column].to_numpy()
            assert got.dtype == np.float64
            assert np.array_equal(got.view(np.uint64), expected.view(np.uint64)), column
        elif kind == "integer":
            assert frame[column].dtype == np.int64
            assert frame[column].tolist() == [int(v) for v in raw], column
        else:
            assert frame[column].astype(str).tolist() == raw, column


@pytest.mark.parametrize("name", NAMES)
def test_types_shapes_and_levels_follow_the_schema(name):
    spec = _io.schema()[name]
    frame = companion.load_dataset(name)
    assert frame.shape == (spec["nrow"], spec["ncol"])
    assert not frame.isna().any().any()
    for column, info in spec["columns"].items():
        dtype = frame[column].dtype
        if "levels" in info:
            assert isinstance(dtype, pd.CategoricalDtype), column
            assert list(dtype.categories) == info["levels"], column
            assert dtype.ordered == (info["type"] == "ordered factor"), column
        else:
            assert dtype == {"double": np.float64, "integer": np.int64}[info["type"]], column


def test_r_facts_that_set_contrasts_and_baselines():
    """Level orders as R's str() prints them in the chapter."""
    sleep = companion.load_dataset("sleepstudy")
    assert list(sleep["Subject"].cat.categories[:3]) == ["308", "309", "310"]
    cbpp = companion.load_dataset("cbpp")
    assert list(cbpp["period"].cat.categories) == ["1", "2", "3", "4"]
    assert cbpp["herd"].cat.categories[9] == "10"  # not alphabetical ("10" after "9")
    seed = companion.load_dataset("Loblolly")["Seed"]
    assert seed.cat.ordered and list(seed.cat.categories[:3]) == ["329", "327", "325"]
    assert list(companion.load_dataset("PlantGrowth")["group"].cat.categories) == [
        "ctrl", "trt1", "trt2"]
    assert list(companion.load_dataset("epil")["trt"].cat.categories) == ["placebo", "progabide"]
    assert list(companion.load_dataset("Puromycin")["state"].cat.categories) == [
        "treated", "untreated"]


def test_volcano_matrix_is_rs_matrix():
    matrix = companion.volcano_matrix()
    long = companion.load_dataset("volcano")
    assert matrix.shape == (87, 61)
    assert np.array_equal(matrix[long["row"] - 1, long["col"] - 1], long["height"].to_numpy())
    # R: volcano[1, 1] == 100, range(volcano) == c(94, 195)
    assert matrix[0, 0] == 100 and matrix.min() == 94 and matrix.max() == 195


def test_sim_data_truth_is_the_chapter_design():
    truth = companion.datasets.sim_data_truth()
    assert truth["beta"] == {"(Intercept)": 0.5, "x1": 0.3, "x2": 0.2}
    assert truth["sd_u"] == 0.5 and len(truth["true_u"]) == 25


def test_names_are_case_insensitive():
    assert companion.load_dataset("LOBLOLLY").equals(companion.load_dataset("Loblolly"))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        companion.load_dataset("sleep_study")
    message = str(info.value)
    assert "'sleep_study'" in message and "Did you mean 'sleepstudy'?" in message
    assert all(name in message for name in NAMES)


def test_non_string_name_is_refused():
    with pytest.raises(TypeError, match="must be a string"):
        companion.load_dataset(3)


@pytest.mark.parametrize("name", NAMES)
def test_each_loader_documents_source_and_columns(name):
    doc = LOADERS[name].__doc__
    assert "Source:" in doc and "Columns:" in doc
    for column in _io.schema()[name]["columns"]:
        assert column in doc, f"{name}: column {column} undocumented"


def test_detailed_listing():
    table = companion.list_datasets(details=True)
    assert list(table.index) == NAMES
    assert table.loc["sim_data", "rows"] == 2500


def test_data_beyond_the_chapter_are_the_corpus_files():
    corpus = Path(__file__).resolve().parents[1] / "reference" / "corpus"
    sums = dict(reversed(line.split()) for line in (corpus / "SHA256SUMS").read_text()
                .splitlines() if line.strip())
    spec = _io.schema()["sim_partial_crossed"]
    assert hashlib.sha256(spec["path"].read_bytes()).hexdigest() == sums[spec["file"]]
    ours = companion.load_dataset("sim_partial_crossed")
    assert ours.equals(load_data("sim_partial_crossed").astype(ours.dtypes.to_dict()))
