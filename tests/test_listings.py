"""Tests for weaklabel.listings: formats, sources, roles, cleaning and every rejection reason."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from weaklabel.listings import (
    REJECTED_COLUMNS,
    REJECTION_REASONS,
    ColumnRoles,
    Field,
    Listings,
    ListingsError,
    concat_listings,
    delimited,
    list_listing_files,
    read_listing_file,
    read_listings,
)

FASHION = Path(__file__).resolve().parents[1].parent / "shared/data/fashion"

ROLES = ColumnRoles(
    fields=(Field("title", "text"), Field("tags", "tags", 0.5), Field("category", "category", 0.3))
)
CSV_TEXT = (
    "id,title,tags,category,image,price\n"
    '15970,Blue Mug,"blue, mug ,,ceramic",Home > Kitchen > Mugs,img/1.jpg,9.5\n'
    "2,,red,,img/2.jpg,\n"
    '3,"Two\nlines",,Toys,,1\n'
)


def accounted(listings: Listings) -> None:
    """Assert the accounting invariant and the shape of the rejected table."""
    counts = listings.counts
    assert counts["rows_in"] == counts["rows_out"] + sum(counts["rejected"].values())
    assert counts["rows_out"] == len(listings.frame)
    assert sum(counts["rejected"].values()) == len(listings.rejected)
    assert set(counts["rejected"]) == set(REJECTION_REASONS)
    assert list(listings.rejected.columns) == list(REJECTED_COLUMNS)
    assert listings.rejected["reason"].value_counts().to_dict() == {
        r: n for r, n in counts["rejected"].items() if n
    }
    assert isinstance(listings.frame.index, pd.RangeIndex)
    assert len(listings.origin) == len(listings.frame)


def write(path: Path, text: str | bytes) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def jsonl(records: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def rejected_by(listings: Listings, reason: str) -> pd.DataFrame:
    return listings.rejected[listings.rejected["reason"] == reason].reset_index(drop=True)


@pytest.fixture
def arrow_only(monkeypatch):
    """Fail if a CSV/TSV file is handed to the slow record-by-record parser."""

    def slow(*args):
        raise AssertionError("the Python csv fallback was used")

    monkeypatch.setattr(delimited, "read_delimited_python", slow)


# ------------------------------------------------------------------------- roles


def test_field_parse_weights():
    assert Field.parse("title", "text") == Field("title", "text", 1.0)
    assert Field.parse("title:0.3", "text") == Field("title", "text", 0.3)
    assert Field.parse(" tags : 1 ", "tags") == Field("tags", "tags", 1.0)


@pytest.mark.parametrize("spec", ["title:0", "title:1.5", "title:-0.2", "title:nan"])
def test_field_parse_rejects_weights_out_of_range(spec):
    with pytest.raises(ListingsError, match=r"0 < weight <= 1"):
        Field.parse(spec, "text")


@pytest.mark.parametrize("spec", ["title:abc", "title:"])
def test_field_parse_rejects_non_numeric_weight(spec):
    with pytest.raises(ListingsError, match="is not a number"):
        Field.parse(spec, "text")


@pytest.mark.parametrize("spec", ["", "  ", ":0.5"])
def test_field_parse_rejects_empty_column(spec):
    with pytest.raises(ListingsError, match="column name"):
        Field.parse(spec, "text")


def test_field_rejects_unknown_role():
    with pytest.raises(ListingsError, match="unknown role 'words'"):
        Field("title", "words")  # type: ignore[arg-type]


def test_column_roles_validation():
    with pytest.raises(ListingsError, match="at least one"):
        ColumnRoles(fields=())
    with pytest.raises(ListingsError, match="more than one field role"):
        ColumnRoles(fields=(Field("title", "text"), Field("title", "tags")))
    with pytest.raises(ListingsError, match="id or image column"):
        ColumnRoles(fields=(Field("id", "text"),))
    with pytest.raises(ListingsError, match="max_field_chars"):
        ColumnRoles(fields=(Field("title", "text"),), max_field_chars=0)


def test_column_roles_dict_round_trip_and_columns():
    roles = ColumnRoles(fields=[Field("title", "text"), Field("cat", "category", 0.2)], image=None)
    assert roles.fields == (Field("title", "text"), Field("cat", "category", 0.2))
    d = roles.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert ColumnRoles.from_dict(d) == roles
    assert roles.columns == ["id", "title", "cat"]
    assert ROLES.columns == ["id", "image", "title", "tags", "category"]
    with pytest.raises(ListingsError, match="unknown column-role keys: colour"):
        ColumnRoles.from_dict({**d, "colour": "red"})
    with pytest.raises(ListingsError, match="'fields'"):
        ColumnRoles.from_dict({"id": "id"})


# ----------------------------------------------------------------------- formats


def test_csv_cleans_roles_and_keeps_other_columns(tmp_path, arrow_only):
    listings = read_listings(write(tmp_path / "a.csv", CSV_TEXT), ROLES)
    accounted(listings)
    frame = listings.frame
    assert list(frame.columns) == ["id", "title", "tags", "category", "image", "price"]
    assert frame["id"].tolist() == ["15970", "2", "3"]
    assert frame["title"].tolist() == ["Blue Mug", "", "Two\nlines"]
    assert frame["tags"].tolist() == [["blue", "mug", "ceramic"], ["red"], []]
    assert frame["category"].tolist() == [["Home", "Kitchen", "Mugs"], [], ["Toys"]]
    assert frame["image"].tolist() == ["img/1.jpg", "img/2.jpg", ""]
    assert frame["price"].tolist()[0] == "9.5" and pd.isna(frame["price"][1])
    assert listings.counts == {
        "rows_in": 3,
        "rows_out": 3,
        "rejected": dict.fromkeys(REJECTION_REASONS, 0),
        "truncated_fields": 0,
    }
    assert listings.files == [tmp_path / "a.csv"]
    assert listings.origin["row"].tolist() == [0, 1, 2]


def test_tsv(tmp_path):
    text = "id\ttitle\ttags\tcategory\timage\n7\t12\" pan, steel\ta;b\tHome>Pans\tp.jpg\n"
    roles = ColumnRoles(fields=ROLES.fields, tag_separator=";")
    listings = read_listings(write(tmp_path / "a.tsv", text), roles)
    accounted(listings)
    row = listings.frame.iloc[0]
    assert (row["id"], row["title"]) == ("7", '12" pan, steel')
    assert row["tags"] == ["a", "b"] and row["category"] == ["Home", "Pans"]


@pytest.mark.parametrize("name", ["a.csv.gz", "a.tsv.gz"])
def test_gzipped_delimited(tmp_path, name):
    tsv = "id\ttitle\ttags\tcategory\timage\n15970\tBlue Mug\tblue\tHome\tx.jpg\n"
    text = CSV_TEXT if name == "a.csv.gz" else tsv
    listings = read_listings(write(tmp_path / name, text), ROLES)
    accounted(listings)
    assert listings.frame["id"].tolist()[0] == "15970"
    assert listings.frame["title"].tolist()[0] == "Blue Mug"
    assert listings.frame["tags"].tolist()[0][0] == "blue"


RECORDS = [
    {
        "id": 15970,
        "title": "Blue Mug",
        "tags": ["blue", " mug ", ""],
        "category": "Home > Mugs",
        "image": "1.jpg",
    },
    {"id": 2, "title": None, "tags": ["red"], "category": None, "image": None},
    {"id": 3, "title": "Lamp", "tags": [], "category": "Home", "image": "3.jpg"},
]


@pytest.mark.parametrize("name", ["a.jsonl", "a.ndjson", "a.jsonl.gz", "a.ndjson.gz"])
def test_jsonl(tmp_path, name):
    listings = read_listings(write(tmp_path / name, "\n" + jsonl(RECORDS) + "\n\n"), ROLES)
    accounted(listings)
    frame = listings.frame
    assert frame["id"].tolist() == ["15970", "2", "3"]
    assert frame["title"].tolist() == ["Blue Mug", "", "Lamp"]
    assert frame["tags"].tolist() == [["blue", "mug"], ["red"], []]
    assert frame["category"].tolist() == [["Home", "Mugs"], [], ["Home"]]
    assert frame["image"].tolist() == ["1.jpg", "", "3.jpg"]


def test_jsonl_malformed_lines_are_rejected(tmp_path):
    lines = [
        json.dumps(RECORDS[0]),
        '{"id": 5, "title": "broken',
        "",
        "[1, 2]",
        json.dumps(RECORDS[2]),
    ]
    listings = read_listings(write(tmp_path / "a.jsonl", "\n".join(lines) + "\n"), ROLES)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["15970", "3"]
    bad = rejected_by(listings, "malformed_json")
    assert bad["row"].tolist() == [1, 2]
    assert bad["raw"].tolist() == ['{"id": 5, "title": "broken', "[1, 2]"]
    assert "expected a JSON object, got list" in bad["detail"][1]
    assert listings.origin["row"].tolist() == [0, 3]


def test_jsonl_invalid_utf8_line(tmp_path):
    bad_line = b'{"id": 9, "title": "caf\xe9"}\n'
    data = jsonl(RECORDS[:1]).encode() + bad_line + jsonl(RECORDS[2:]).encode()
    listings = read_listings(write(tmp_path / "a.jsonl", data), ROLES)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["15970", "3"]
    bad = rejected_by(listings, "undecodable_bytes")
    assert bad["row"].tolist() == [1] and "\\xe9" in bad["raw"][0]


def test_tags_as_delimited_string_json_list_and_list(tmp_path):
    records = [
        {"id": "a", "tags": "red, blue"},
        {"id": "b", "tags": '["big", " small ", null, ""]'},
        {"id": "c", "tags": ["x", "y"]},
        {"id": "d", "tags": "[not json, z"},
    ]
    roles = ColumnRoles(fields=(Field("tags", "tags"),), image=None)
    listings = read_listings(write(tmp_path / "a.jsonl", jsonl(records)), roles)
    accounted(listings)
    assert listings.frame["tags"].tolist() == [
        ["red", "blue"], ["big", "small"], ["x", "y"], ["[not json", "z"]
    ]


def test_parquet_with_list_tags_and_nullable_int_ids(tmp_path):
    table = pa.table({
        "id": pa.array([12345678901234567, None, 3], pa.int64()),
        "title": ["Mug", "Cup", None],
        "tags": pa.array([["blue", " big "], ["x"], None], pa.list_(pa.string())),
        "category": ["Home>Mugs", None, "Toys"],
        "image": ["1.jpg", "2.jpg", None],
        "stock": [1, 2, 3],
    })
    pq.write_table(table, tmp_path / "a.parquet")
    listings = read_listings(tmp_path / "a.parquet", ROLES)
    accounted(listings)
    frame = listings.frame
    assert frame["id"].tolist() == ["12345678901234567", "3"]
    assert frame["tags"].tolist() == [["blue", "big"], []]
    assert frame["category"].tolist() == [["Home", "Mugs"], ["Toys"]]
    assert frame["image"].tolist() == ["1.jpg", ""]
    assert frame["stock"].tolist() == [1, 3]
    assert rejected_by(listings, "missing_id")["row"].tolist() == [1]


def test_float_ids_from_a_pandas_export_lose_the_decimal(tmp_path):
    frame = pd.DataFrame({"id": [15970.0, None, 3.0], "title": ["a", "b", "c"]})
    frame.to_parquet(tmp_path / "a.parquet")
    roles = ColumnRoles(fields=(Field("title", "text"),), image=None)
    listings = read_listings(tmp_path / "a.parquet", roles)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["15970", "3"]
    assert listings.counts["rejected"]["missing_id"] == 1


@pytest.mark.parametrize("as_string", [False, True])
def test_parquet_text_with_invalid_utf8(tmp_path, as_string):
    title = pa.array([b"Mug", b"caf\xe9", b"Cup"], pa.binary())
    table = pa.table({
        "id": ["a", "b", "c"],
        "title": title.view(pa.string()) if as_string else title,
        "tags": [None, None, None],
        "category": [None, None, None],
        "image": ["1", "2", "3"],
    })
    pq.write_table(table, tmp_path / "a.pq")
    listings = read_listings(tmp_path / "a.pq", ROLES)
    accounted(listings)
    assert listings.frame["title"].tolist() == ["Mug", "Cup"]
    bad = rejected_by(listings, "undecodable_bytes")
    assert bad[["row", "id"]].values.tolist() == [[1, "b"]]
    assert "column 'title'" in bad["detail"][0] and "\\xe9" in bad["raw"][0]


def test_empty_file_gives_no_rows(tmp_path):
    files = [write(tmp_path / "a.csv", ""), write(tmp_path / "b.jsonl", "")]
    listings = read_listings(files, ROLES)
    accounted(listings)
    assert listings.counts["rows_in"] == 0 and listings.frame.empty


# ------------------------------------------------------------------------ sources


def test_directory_glob_and_list_sources(tmp_path):
    write(tmp_path / "b.csv", CSV_TEXT)
    write(tmp_path / "a.jsonl", jsonl(RECORDS).replace('"id": ', '"id": 10'))
    write(tmp_path / "notes.txt", "not a listing file")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.csv", CSV_TEXT)
    assert list_listing_files(tmp_path) == [tmp_path / "a.jsonl", tmp_path / "b.csv"]
    assert list_listing_files(str(tmp_path / "*.csv")) == [tmp_path / "b.csv"]
    assert list_listing_files(str(tmp_path / "**" / "*.csv")) == [
        tmp_path / "b.csv",
        tmp_path / "sub" / "c.csv",
    ]
    assert list_listing_files([tmp_path / "b.csv", tmp_path, str(tmp_path / "b.csv")]) == [
        tmp_path / "b.csv",
        tmp_path / "a.jsonl",
    ]
    listings = read_listings(tmp_path, ROLES, progress=True)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["1015970", "102", "103", "15970", "2", "3"]
    assert listings.files == [tmp_path / "a.jsonl", tmp_path / "b.csv"]


def test_bad_sources_are_explained(tmp_path):
    write(tmp_path / "notes.txt", "x")
    with pytest.raises(ListingsError, match=r"unsupported listing file .*notes.txt.*\.csv\.gz"):
        list_listing_files(tmp_path / "notes.txt")
    with pytest.raises(ListingsError, match=r"no listing files directly inside .*\.parquet"):
        list_listing_files(tmp_path)
    with pytest.raises(ListingsError, match=r"no listing files match .*\*\.csv"):
        list_listing_files(str(tmp_path / "*.csv"))
    with pytest.raises(ListingsError, match="does not exist"):
        list_listing_files(tmp_path / "missing.csv")


def test_missing_column_error_names_columns_and_suggests(tmp_path):
    path = write(tmp_path / "a.csv", CSV_TEXT)
    roles = ColumnRoles(fields=(Field("titel", "text"), Field("description", "text")))
    with pytest.raises(ListingsError) as err:
        read_listings(path, roles)
    message = str(err.value)
    assert "text field 'titel' not found (did you mean 'title'?)" in message
    assert "text field 'description' not found" in message
    assert "Columns in the file: id, title, tags, category, image, price" in message
    with pytest.raises(ListingsError, match="id column 'sku' not found"):
        read_listings(path, ColumnRoles(fields=ROLES.fields, id="sku"))


def test_missing_column_hint_ignores_case_and_explains_a_missing_image_column(tmp_path):
    path = write(tmp_path / "a.csv", "ID,title\n1,red shirt\n")
    with pytest.raises(ListingsError) as err:
        read_listings(path, ColumnRoles(fields=(Field("title", "text"),)))
    message = str(err.value)
    assert "id column 'id' not found (did you mean 'ID'?)" in message
    assert ("image column 'image' not found (for listings without images: --image '', "
            "image = \"\" under [listings]") in message


def test_a_list_in_a_text_field_is_read_as_comma_separated_items(tmp_path):
    records = [{"id": "1", "title": ["red shirt", "cotton", None]}, {"id": "2", "title": "blue shirt"}]
    listings = read_listings(write(tmp_path / "a.jsonl", jsonl(records)),
                             ColumnRoles(fields=(Field("title", "text"),), image=None))
    assert listings.frame["title"].tolist() == ["red shirt, cotton", "blue shirt"]


# --------------------------------------------------------------------- rejections


def test_malformed_csv_lines(tmp_path, arrow_only):
    text = (
        "id,title,tags,category,image\n"
        '1,"multi\nline title",,,\n'
        "2,too,few\n"
        "\n"
        "3,ok,,,\n"
        "4,too,many,fields,here,!\n"
        "5,fine,,,\n"
    )
    listings = read_listings(write(tmp_path / "a.csv", text), ROLES)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["1", "3", "5"]
    assert listings.origin["row"].tolist() == [0, 2, 4]
    bad = rejected_by(listings, "malformed_line")
    assert bad["row"].tolist() == [1, 3]
    assert bad["raw"].tolist() == ["2,too,few", "4,too,many,fields,here,!"]
    assert bad["detail"].tolist() == ["expected 5 fields, got 3", "expected 5 fields, got 6"]
    assert bad["id"].isna().all()


def test_invalid_utf8_in_one_csv_row(tmp_path, arrow_only):
    data = (
        b"\xef\xbb\xbfid,title,tags,category,image\n"
        b"1,Mug,,,\n"
        b'2,"Caf\xe9\nmug",,,\n'
        b"3,Cup,,,\n"
        b'4,"Tea, \xe2\x80\x9cgreen\xe2\x80\x9d",,,\n'
    )
    listings = read_listings(write(tmp_path / "a.csv.gz", data), ROLES)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["1", "3", "4"]
    assert listings.frame["title"].tolist() == ["Mug", "Cup", "Tea, \u201cgreen\u201d"]
    assert listings.origin["row"].tolist() == [0, 2, 3]
    bad = rejected_by(listings, "undecodable_bytes")
    assert bad[["row", "id"]].values.tolist() == [[1, "2"]]
    assert bad["raw"][0] == '2,"Caf\\xe9\nmug",,,'
    assert "can't decode byte 0xe9" in bad["detail"][0]


def test_invalid_utf8_in_a_malformed_line_uses_the_python_parser(tmp_path):
    data = (
        b"id,title,tags,category,image\n"
        b"1,Mug,,,\n"
        b"2,caf\xe9,x,y,z,extra\n"
        b'3,"Caf\xe9 noir",,,\n'
        b'4,"Two\nlines",,,\n'
        b"\n"
        b"5,Cup,,,\n"
    )
    listings = read_listings(write(tmp_path / "a.csv", data), ROLES)
    accounted(listings)
    assert listings.frame["title"].tolist() == ["Mug", "Two\nlines", "Cup"]
    assert listings.origin["row"].tolist() == [0, 3, 4]
    assert listings.rejected[["row", "reason", "id"]].values.tolist() == [
        [1, "malformed_line", None],
        [2, "undecodable_bytes", "3"],
    ]
    # the Python parser keeps each record's raw text exactly, quotes included
    assert listings.rejected["raw"].tolist() == ["2,caf\\xe9,x,y,z,extra", '3,"Caf\\xe9 noir",,,']


def test_missing_id_and_empty_text(tmp_path):
    text = (
        "id,title,tags,category,image\n"
        ",Orphan,,,\n"
        "  ,Blank id,,,\n"
        "7,,,,\n"
        "8,   , , >  > ,\n"
        "9,Kept,,,\n"
    )
    listings = read_listings(write(tmp_path / "a.csv", text), ROLES)
    accounted(listings)
    assert listings.frame["id"].tolist() == ["9"]
    missing = rejected_by(listings, "missing_id")
    assert missing["row"].tolist() == [0, 1] and missing["id"].isna().all()
    assert missing["raw"][0] == ",Orphan,,,"
    empty = rejected_by(listings, "empty_text")
    assert empty[["row", "id"]].values.tolist() == [[2, "7"], [3, "8"]]


def test_duplicate_ids_within_a_file(tmp_path):
    text = "id,title,tags,category,image\n1,First,,,\n2,,,,\n2,Second,,,\n1,Again,,,\n"
    path = write(tmp_path / "a.csv", text)
    listings = read_listings(path, ROLES)
    accounted(listings)
    assert listings.frame[["id", "title"]].values.tolist() == [["1", "First"], ["2", "Second"]]
    dup = rejected_by(listings, "duplicate_id")
    assert dup[["row", "id"]].values.tolist() == [[3, "1"]]
    assert dup["detail"][0] == f"id '1' first seen at row 0 of {path}"
    assert dup["raw"][0] == "1,Again,,,"


def test_duplicate_ids_across_files(tmp_path):
    a = write(tmp_path / "a.csv", "id,title,tags,category,image\n1,First,,,\n2,Two,,,\n")
    b = write(tmp_path / "b.jsonl", jsonl([{"id": 3, "title": "Three"}, {"id": 1, "title": "Dup"}]))
    roles = ColumnRoles(fields=(Field("title", "text"),), image=None)
    listings = read_listings([a, b], roles)
    accounted(listings)
    assert listings.frame[["id", "title"]].values.tolist() == [
        ["1", "First"], ["2", "Two"], ["3", "Three"]
    ]
    assert listings.origin.values.tolist() == [[str(a), 0], [str(a), 1], [str(b), 0]]
    dup = rejected_by(listings, "duplicate_id")
    assert dup[["source", "row", "id"]].values.tolist() == [[str(b), 1, "1"]]
    assert dup["detail"][0] == f"id '1' first seen at row 0 of {a}"
    assert json.loads(dup["raw"][0])["title"] == "Dup"
    assert listings.counts["rows_in"] == 4 and listings.counts["rejected"]["duplicate_id"] == 1


def test_concat_listings_keeps_file_order_and_sums_counts(tmp_path):
    a = write(tmp_path / "a.csv", "id,title,tags,category,image\n1,x,,,\n,y,,,\n")
    b = write(tmp_path / "b.csv", "id,title,tags,category,image\n1,z,,,\n2,w,,,\n")
    parts = [read_listing_file(a, ROLES), read_listing_file(b, ROLES)]
    combined = concat_listings(parts)
    accounted(combined)
    assert combined.frame["title"].tolist() == ["x", "w"]
    assert combined.rejected[["source", "reason"]].values.tolist() == [
        [str(a), "missing_id"],
        [str(b), "duplicate_id"],
    ]
    assert combined.counts["rows_in"] == 4
    with pytest.raises(ListingsError, match="at least one"):
        concat_listings([])


def test_absurdly_long_fields_are_truncated(tmp_path, arrow_only):
    title = "x" * 3_000_000  # larger than pyarrow's first read block, too
    tags = ",".join(["tag"] * 10)
    text = f'id,title,tags,category,image\n1,{title},"{tags}",,\n2,short,a,,\n'
    roles = ColumnRoles(fields=ROLES.fields, max_field_chars=12)
    listings = read_listings(write(tmp_path / "a.csv", text), roles)
    accounted(listings)
    assert listings.frame["title"].tolist() == ["x" * 12, "short"]
    assert listings.frame["tags"].tolist() == [["tag", "tag", "tag"], ["a"]]
    assert listings.counts["truncated_fields"] == 2


def test_a_truncated_text_keeps_no_trailing_space(tmp_path):
    roles = ColumnRoles(fields=(Field("title", "text"),), image=None, max_field_chars=5)
    listings = read_listings(write(tmp_path / "a.csv", "id,title\n1,blue shirt\n"), roles)
    assert listings.frame["title"].tolist() == ["blue"]


def test_default_limit_truncates_long_text(tmp_path):
    text = "id,title,tags,category,image\n1," + "y" * 50_000 + ",,,\n"
    listings = read_listings(write(tmp_path / "a.csv", text), ROLES)
    assert len(listings.frame["title"][0]) == 20_000
    assert listings.counts["truncated_fields"] == 1


# ------------------------------------------------------------------- real sample


def test_fashion_sample_is_fully_accounted(arrow_only):
    path = FASHION / "listings.csv"
    if not path.exists():
        pytest.skip(f"sample data not found at {path}")
    roles = ColumnRoles(
        fields=(
            Field("title", "text"), Field("articleType", "category"), Field("baseColour", "tags")
        )
    )
    start = time.perf_counter()
    listings = read_listings(path, roles)
    elapsed = time.perf_counter() - start
    accounted(listings)
    assert listings.counts["rows_in"] == 44_441
    assert listings.frame["id"].tolist()[0] == "15970"
    assert listings.frame["title"].tolist()[0] == "Turtle Check Men Navy Blue Shirt"
    assert elapsed < 5  # 0.1-0.3 s on a 2-core machine; the bound allows for busy CI hosts
