"""Hostile listings and config files: a bad row is rejected with a reason and counted, a bad file or
setting stops the run with one line that names it and the fix, and nothing the user wrote is touched."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from conftest import one_line_error

from weaklabel.labeling.overrides import Overrides, OverridesError
from weaklabel.listings import ColumnRoles, Field, Listings, read_listing_file, read_listings
from weaklabel.parallel import run_partitions

ROLES = ColumnRoles(fields=(Field("title", "text"), Field("description", "text", 0.3)), image=None)
HEADER = "id,title,description\n"
GOOD_ROWS = "".join(f"{i},title {i},description {i}\n" for i in range(3, 17))  # 14 records
BINARY = bytes(range(256)) * 8


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def check_accounted(listings: Listings, rows_in: int, rows_accounted) -> None:
    assert listings.counts["rows_in"] == rows_in
    rows_accounted(rows_in, len(listings.frame), rejected=len(listings.rejected))


def pipeline_file(folder: Path, **sections: str) -> Path:
    """A small pipeline file over folder/listings.csv, with extra lines per section."""
    write(folder / "listings.csv", HEADER + "1,red mug,a mug\n")
    text = '[listings]\npaths = ["listings.csv"]\ntext = ["title"]\nimage = ""\n'
    text += "".join(f"[{name}]\n{lines}\n" for name, lines in sections.items())
    return write(folder / "pipeline.toml", text)


def vocab_argv(path: Path, tmp_path: Path) -> list[str]:
    return ["vocab", str(path), "--text", "title", "--image", "", "--out", str(tmp_path / "vocab"), "-q"]


# ------------------------------------------------------------------------- quotes in CSV


def test_unclosed_quote_costs_only_its_own_line(tmp_path, rows_accounted):
    text = HEADER + "1,red mug,a mug\n" + '2,"broken title,desc\n' + GOOD_ROWS
    listings = read_listings(write(tmp_path / "listings.csv", text), ROLES)
    check_accounted(listings, 16, rows_accounted)
    assert listings.frame["id"].tolist() == ["1", *map(str, range(3, 17))]
    bad = listings.rejected
    assert bad[["row", "reason", "raw"]].values.tolist() == [[1, "malformed_line", '2,"broken title,desc']]
    assert "unclosed quote" in bad["detail"][0]


def test_unclosed_quote_closed_by_a_later_record_costs_only_its_own_line(tmp_path, rows_accounted):
    later = "".join(f'{i},"title, {i}",description {i}\n' for i in range(3, 17))  # quotes a runaway could close on
    text = HEADER + "1,red mug,a mug\n" + '2,"broken title,desc\n' + later
    listings = read_listings(write(tmp_path / "listings.csv", text), ROLES)
    check_accounted(listings, 16, rows_accounted)
    assert listings.frame["title"].tolist()[1:] == [f"title, {i}" for i in range(3, 17)]
    assert listings.rejected["raw"].tolist() == ['2,"broken title,desc']


def test_quote_closed_later_in_the_row_is_rejected_not_merged(tmp_path, rows_accounted):
    text = (HEADER + "1,red mug,a mug\n"
            + '3,"title, with",extra"junk,desc\n'  # a stray quote in an unquoted field
            + '4,"title, with,extra"junk,desc\n'  # text after a closing quote: columns would merge
            + "5,blue mug,a mug\n")
    listings = read_listings(write(tmp_path / "listings.csv", text), ROLES)
    check_accounted(listings, 4, rows_accounted)
    assert listings.frame["id"].tolist() == ["1", "5"]
    bad = listings.rejected
    assert bad[["row", "reason"]].values.tolist() == [[1, "malformed_line"], [2, "malformed_line"]]
    assert bad["detail"][0].startswith("stray quote at character 22")
    assert bad["detail"][1].startswith("text after a closing quote at character 22")
    assert bad["raw"].tolist() == ['3,"title, with",extra"junk,desc', '4,"title, with,extra"junk,desc']


def test_multiline_quoted_fields_are_kept(tmp_path, rows_accounted):
    text = (HEADER
            + '1,"Red mug","Holds tea.\nDishwasher safe, 350 ml.\r\n""Large"" size"\n'
            + '2,Blue mug,"3,a,b\n4,c,d"\n'  # inner lines that look like records stay in the field
            + "3,Green mug,plain\n")
    listings = read_listings(write(tmp_path / "listings.csv", text), ROLES)
    check_accounted(listings, 3, rows_accounted)
    assert listings.rejected.empty
    assert listings.frame["description"].tolist() == [
        'Holds tea.\nDishwasher safe, 350 ml.\r\n"Large" size', "3,a,b\n4,c,d", "plain"]


def test_multiline_field_next_to_a_broken_quote(tmp_path, rows_accounted):
    text = (HEADER + '1,"Red mug","two\nlines"\n' + '2,"broken,desc\n' + '30,Blue mug,"more\nlines"\n'
            + GOOD_ROWS)
    listings = read_listings(write(tmp_path / "listings.csv", text), ROLES)
    check_accounted(listings, 17, rows_accounted)
    assert listings.frame["description"].tolist()[:2] == ["two\nlines", "more\nlines"]
    assert listings.rejected["raw"].tolist() == ['2,"broken,desc']


def test_tsv_keeps_quotes_inside_unquoted_fields(tmp_path, rows_accounted):
    text = 'id\ttitle\tdescription\n1\t12" pan\tsteel\n2\t"broken\tdesc\n3\tmug\t"two\nlines"\n'
    listings = read_listings(write(tmp_path / "listings.tsv", text), ROLES)
    check_accounted(listings, 3, rows_accounted)
    assert listings.frame["title"].tolist() == ['12" pan', "mug"]
    assert listings.rejected["raw"].tolist() == ['2\t"broken\tdesc']


def test_a_thousand_broken_quotes_read_in_bounded_time(tmp_path, rows_accounted):
    rows = "".join(f'{i},"broken {i},desc\n{i + 1},"fine, {i}",desc\n' for i in range(0, 4000, 2))
    started = time.perf_counter()
    listings = read_listings(write(tmp_path / "listings.csv", HEADER + rows), ROLES)
    assert time.perf_counter() - started < 20
    check_accounted(listings, 4000, rows_accounted)
    assert len(listings.frame) == 2000 and len(listings.rejected) == 2000


# ------------------------------------------------------------------ encodings and binary


@pytest.mark.parametrize("name", ["listings.csv", "listings.tsv", "listings.jsonl"])
def test_utf16_with_bom_is_decoded(tmp_path, rows_accounted, name):
    if name.endswith("jsonl"):
        text = "".join(json.dumps({"id": str(i), "title": f"tasse {i} é"}) + "\n" for i in range(3))
    else:
        sep = "," if name.endswith("csv") else "\t"
        text = sep.join(["id", "title", "description"]) + "\n" + "".join(
            sep.join([str(i), f"tasse {i} é", '"deux\nlignes"']) + "\n" for i in range(3))
    listings = read_listing_file(write(tmp_path / name, text.encode("utf-16")), ROLES if "jsonl" not in name
                                 else ColumnRoles(fields=(Field("title", "text"),), image=None))
    check_accounted(listings, 3, rows_accounted)
    assert listings.frame["title"].tolist() == [f"tasse {i} é" for i in range(3)]


@pytest.mark.parametrize("name", ["listings.csv", "listings.tsv", "listings.jsonl", "listings.csv.gz"])
def test_binary_listing_file_is_one_line_error(tmp_path, capsys, name):
    import gzip

    path = write(tmp_path / name, gzip.compress(BINARY) if name.endswith(".gz") else BINARY)
    line = one_line_error(vocab_argv(path, tmp_path), capsys)
    assert str(path) in line and "is binary, not text" in line
    assert path.read_bytes() != b""  # the user's file is untouched


def test_utf16_without_bom_is_one_line_error(tmp_path, capsys):
    path = write(tmp_path / "listings.csv", (HEADER + "1,red mug,a mug\n").encode("utf-16-le"))
    line = one_line_error(vocab_argv(path, tmp_path), capsys)
    assert str(path) in line and "UTF-16" in line and "iconv" in line


def test_another_encoding_is_one_line_error(tmp_path, capsys):
    path = write(tmp_path / "listings.csv", (HEADER + "1,Красная кружка,кружка\n" * 30).encode("cp1251"))
    line = one_line_error(vocab_argv(path, tmp_path), capsys)
    assert str(path) in line and "not UTF-8 text" in line and "iconv" in line


def test_invalid_utf8_in_one_row_is_still_a_row_rejection(tmp_path, rows_accounted):
    data = (HEADER + "1,red mug,a mug\n").encode() + b"2,caf\xe9 mug,latin-1\n" + GOOD_ROWS.encode()
    listings = read_listings(write(tmp_path / "listings.csv", data), ROLES)
    check_accounted(listings, 16, rows_accounted)
    assert listings.rejected[["row", "reason", "id"]].values.tolist() == [[1, "undecodable_bytes", "2"]]


# ----------------------------------------------------------------- config and artifacts


def test_binary_pipeline_file_is_one_line_error(tmp_path, capsys):
    path = write(tmp_path / "pipeline.toml", BINARY)
    line = one_line_error(["run", str(path), "-q"], capsys)
    assert str(path) in line and "binary, not text" in line and "pipeline file (TOML)" in line


def test_binary_overrides_file_is_one_line_error(tmp_path, capsys):
    overrides = write(tmp_path / "overrides.toml", BINARY)
    path = pipeline_file(tmp_path, vocab='overrides = "overrides.toml"')
    line = one_line_error(["run", str(path), "-q"], capsys)
    assert str(overrides) in line and "binary, not text" in line and "overrides file (TOML)" in line
    assert not (tmp_path / "vocab").exists()  # stopped before the first stage


@pytest.mark.parametrize("content", [BINARY, b'{"stage": "vocab", "config": {', b"[1, 2]"])
def test_corrupt_manifest_is_one_line_error(tmp_path, capsys, content):
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    manifest = write(vocab / "manifest.json", content)
    listings = write(tmp_path / "listings.csv", HEADER + "1,red mug,a mug\n")
    argv = ["assign", str(listings), "--vocab", str(vocab), "--out", str(tmp_path / "labeled"), "-q"]
    line = one_line_error(argv, capsys)
    assert str(manifest) in line and "'weaklabel vocab'" in line
    assert manifest.read_bytes() == content


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('[rename]\n"black" = 5\n', "[rename] 'black' = 5", "the label's new name, a non-empty string"),
    ('[rename]\n"black" = ""\n', "[rename] 'black' = ''", "the label's new name, a non-empty string"),
    ('[merge]\n"sneakers" = ["trainers", 3]\n', "[merge] 'sneakers' = ['trainers', 3]", "a non-empty string"),
    ('[add]\n"tea towel" = []\n', "[add] 'tea towel' = []", "a non-empty list of them"),
    ("delete = 5\n", "delete = 5", "label names"),
    ('rename = "black"\n', "rename = 'black'", "should be a table"),
    ('[merge]\n"" = ["x"]\n', '[merge] has an empty name ("" = ...)', "name a label or a term"),
])
def test_overrides_values_of_the_wrong_type(tmp_path, text, key, expected):
    path = write(tmp_path / "overrides.toml", text)
    with pytest.raises(OverridesError) as error:
        Overrides.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key}") and expected in message and "\n" not in message


def test_overrides_of_the_wrong_type_stop_the_run_in_one_line(tmp_path, capsys):
    write(tmp_path / "overrides.toml", '[rename]\n"black" = 5\n')
    path = pipeline_file(tmp_path, vocab='overrides = "overrides.toml"')
    line = one_line_error(["run", str(path), "-q"], capsys)
    assert "overrides.toml: [rename] 'black' = 5: expected the label's new name" in line


@pytest.mark.parametrize("kind", ["text", "truncated", "empty"])
def test_weights_that_are_no_weights_file_stop_the_run_in_one_line(tmp_path, capsys, kind):
    import torch

    weights = tmp_path / "weights.pt"
    if kind == "text":
        write(weights, "root:x:0:0:root:/root:/bin/bash\n")
    else:
        torch.save({"w": torch.zeros(64, 64)}, weights)
        weights.write_bytes(weights.read_bytes()[: 0 if kind == "empty" else 300])
    path = pipeline_file(tmp_path, train=f'weights = "{weights}"')
    line = one_line_error(["run", str(path), "-q"], capsys)
    assert f"[train] weights: {weights} is not a timm/PyTorch weights file" in line


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast_naming_it(capfd):
    address = f"tcp://127.0.0.1:{closed_port()}"
    started = time.perf_counter()
    with pytest.raises(ValueError) as error:
        run_partitions(abs, [-1, -2], scheduler=address, progress=False)
    assert time.perf_counter() - started < 15
    message = str(error.value)
    assert message.startswith(f"cannot reach the Dask scheduler at '{address}'") and "\n" not in message
    assert "dask scheduler" in message
    assert "Traceback" not in capfd.readouterr().err
