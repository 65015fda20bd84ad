"""The vocab and assign stages end to end, with the packaged MiniLM model, on generated listings."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import EXAMPLE_ROLES, one_line_error

from weaklabel.cli import _remove_empty, build_parser, main
from weaklabel.labeling import LabelAssigner, Vocabulary, assign_labels, build_vocabulary, read_labeled
from weaklabel.labeling.overrides import OverridesError
from weaklabel.listings import REJECTED_LISTINGS_SCHEMA, ColumnRoles, Field


def label_of(vocab: Vocabulary, term: str):
    rows = vocab.terms[(vocab.terms["term"] == term) & vocab.terms["label_id"].notna()]
    return int(rows["label_id"].iloc[0]) if len(rows) else None


def test_vocab_folder_holds_documented_artifacts(example_vocab):
    for name in ("labels.parquet", "terms.parquet", "label_embeddings.npy", "boilerplate.parquet", "rejected.parquet",
                 "report.html", "manifest.json"):
        assert (example_vocab / name).is_file(), name
    assert pq.read_schema(example_vocab / "rejected.parquet").equals(REJECTED_LISTINGS_SCHEMA)  # typed even when empty
    labels = pd.read_parquet(example_vocab / "labels.parquet")
    schema = pq.read_schema(example_vocab / "labels.parquet")
    assert (str(schema.field("label_id").type) == "int32"
            and str(schema.field("aliases").type) == "list<element: string>")
    assert labels["label_id"].tolist() == list(range(len(labels)))
    ordered = labels.sort_values(["support", "name"], ascending=[False, True])["label_id"].tolist()
    assert ordered == labels["label_id"].tolist()
    assert set(labels["tier"]) <= {"head", "torso", "tail"} and labels["tier"].iloc[0] == "head"
    terms = pd.read_parquet(example_vocab / "terms.parquet")
    assert list(terms.columns) == ["term", "field", "support", "ends", "alone", "label_id", "similarity", "how"]
    assert set(terms["field"]) <= {"title", "description", "tags", "category_path"}
    assert terms["how"].eq("rare").any() and terms["how"].str.startswith("dropped:").any()
    assert terms["similarity"].isna().equals(terms["label_id"].isna())  # no similarity without a label
    assert np.load(example_vocab / "label_embeddings.npy").shape == (len(labels), 384)


def test_products_are_more_informative_than_their_modifiers(example_vocab):
    vocab = Vocabulary.load(example_vocab)
    informativeness = vocab.labels["informativeness"]
    assert informativeness.between(0, 1).all()
    for product in ("t-shirt", "mug", "necklace"):
        for modifier in ("black", "white", "cotton"):
            gap = informativeness[label_of(vocab, product)] - informativeness[label_of(vocab, modifier)]
            assert gap > 0.2, (product, modifier, gap)


def test_boilerplate_makes_no_labels_and_is_reported(example_vocab, example_labeled):
    vocab = Vocabulary.load(example_vocab)
    found = pd.read_parquet(example_vocab / "boilerplate.parquet")
    patterns = set(found["pattern"])
    assert {"ships within 1-3 business days", "follow our shop for new arrivals"} <= patterns
    assert "this * makes a great gift" in patterns  # a template: the product in the slot stays content
    for term in ("business days", "arrivals", "screen settings", "satisfaction guaranteed", "makes"):
        assert label_of(vocab, term) is None, term
    assert label_of(vocab, "mug") is not None
    removed = json.loads((example_vocab / "manifest.json").read_text())["counts"]["boilerplate"]
    assert removed["description"]["patterns"] == len(found) and removed["description"]["listings"] > 300
    assert removed["title"] == {"patterns": 0, "listings": 0, "words": 0}
    assert "ships within 1-3 business days" in (example_vocab / "report.html").read_text()
    evidence = {e["term"] for row in read_labeled(example_labeled)["evidence"] for e in row
                if e["field"] == "description"}
    assert evidence and not evidence & {"business days", "arrivals", "shop"}  # assignment skips it too


def test_boilerplate_group_finds_one_sellers_sentence(tmp_path):
    # 25 of 3,000 listings repeat a brand sentence: under the catalogue's threshold (1% of 3,000), over its shop's
    types = ["mug", "cup", "bowl", "plate", "vase", "lamp"]
    rows = [{"id": str(i), "title": f"{types[i % 6]} {i % 11}", "shop": "arla" if i < 25 else f"s{i % 50}",
             "description": f"Lovely {types[i % 6]} number {i}. Arla ko guarantees freshness every day." if i < 25
             else f"Plain {types[i % 6]} number {i}. Washed by hand {i}."} for i in range(3000)]
    pd.DataFrame(rows).to_csv(tmp_path / "l.csv", index=False)
    roles = ColumnRoles(fields=(Field("title", "text"), Field("description", "text")), id="id", image=None)
    plain = build_vocabulary(tmp_path / "l.csv", roles, tmp_path / "plain", progress=False, min_label_support=5)
    grouped = build_vocabulary(tmp_path / "l.csv", roles, tmp_path / "grouped", progress=False, min_label_support=5,
                               boilerplate_group="shop")
    assert label_of(plain, "arla") is not None
    assert label_of(grouped, "arla") is None and label_of(grouped, "mug") is not None
    assert "arla ko guarantees freshness every day" in set(grouped.boilerplate.to_frame()["pattern"])
    with pytest.raises(ValueError, match="no column 'seller'"):
        build_vocabulary(tmp_path / "l.csv", roles, tmp_path / "x", progress=False, boilerplate_group="seller")


def test_vocab_manifest_records_config_inputs_counts_and_timings(example_vocab, example_data):
    manifest = json.loads((example_vocab / "manifest.json").read_text())
    assert manifest["stage"] == "vocab" and manifest["weaklabel_version"]
    assert manifest["inputs"][0]["sha256"] and manifest["inputs"][0]["path"].endswith("listings.csv")
    assert manifest["counts"]["rows_in"] == 600 and manifest["counts"]["labels"] == manifest["outputs"]["labels"]
    assert manifest["config"]["builder"]["min_label_support"] == 5
    assert {"count_terms", "embed_terms", "cluster"} <= set(manifest["timings_s"])


def test_variants_and_synonyms_share_a_label(example_vocab):
    vocab = Vocabulary.load(example_vocab)
    shirt = label_of(vocab, "t-shirt")
    assert shirt is not None
    assert label_of(vocab, "tshirt") == shirt and label_of(vocab, "t shirt") == shirt
    assert label_of(vocab, "mugs") == label_of(vocab, "mug") is not None
    assert label_of(vocab, "grey") == label_of(vocab, "gray")


def test_report_shows_plot_top_labels_and_dropped_terms(example_vocab):
    html = (example_vocab / "report.html").read_text()
    assert "Support before vs after clustering" in html and "data:image/png;base64," in html
    assert "Top " in html and "Dropped terms by reason" in html and "min_support" in html


def test_rebuild_is_deterministic_and_uses_the_embedding_cache(example_data, example_vocab, tmp_path):
    build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False, min_label_support=5)
    assert pd.read_parquet(tmp_path / "labels.parquet").equals(pd.read_parquet(example_vocab / "labels.parquet"))
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"]["embeddings_computed"] == 0


def test_clustering_merges_labels(example_data, example_vocab, tmp_path):
    flat = build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                            min_label_support=5, cluster=False)
    clustered = Vocabulary.load(example_vocab)
    assert len(clustered.labels) < len(flat.labels)
    assert flat.terms.loc[flat.terms["term"] == "tshirt", "label_id"].iloc[0] != \
        flat.terms.loc[flat.terms["term"] == "t-shirt", "label_id"].iloc[0]


def test_overrides_rename_merge_delete_add(example_data, tmp_path):
    overrides = tmp_path / "overrides.toml"
    overrides.write_text(
        'delete = ["sale"]\n'
        '[rename]\n"t-shirt" = "t-shirt (renamed)"\n'
        '[merge]\n"mug" = ["teapot"]\n'
        '[add]\n"cosy" = ["rustic", "cozy"]\n'
    )
    vocab = build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path / "v", progress=False,
                             min_label_support=5, stopwords="english", overrides=overrides)
    names = set(vocab.labels["name"])
    assert "t-shirt (renamed)" in names and "t-shirt" not in names
    labels_by_name = vocab.labels.set_index("name")
    assert "t-shirt" in labels_by_name.loc["t-shirt (renamed)", "aliases"]  # the former name stays an alias
    assert label_of(vocab, "teapot") == label_of(vocab, "mug")
    assert label_of(vocab, "sale") is None
    assert label_of(vocab, "rustic") == label_of(vocab, "cozy") == int(labels_by_name.loc["cosy", "label_id"])
    manifest = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert any(i["path"].endswith("overrides.toml") for i in manifest["inputs"])


def test_overrides_naming_nothing_is_an_error(example_data, tmp_path):
    with pytest.raises(OverridesError, match="no label or labelled term"):
        build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                         overrides={"delete": ["no such label anywhere"]})


def test_an_added_term_found_in_no_listing_is_an_error(example_data, tmp_path):
    with pytest.raises(OverridesError, match="'tea towl' is no term of the listings"):
        build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                         overrides={"add": {"towels": ["mug", "tea towl"]}})


def test_an_allowlisted_term_found_in_no_listing_is_an_error(example_data, tmp_path):
    with pytest.raises(ValueError, match="allowlist: 'tea towl' is no term of the listings"):
        build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                         allowlist=["mug", "Tea Towl"])


def test_allowlisted_and_added_tags_are_written_as_the_analyzer_writes_them(tmp_path):
    listings = tmp_path / "tags.csv"
    listings.write_text("id,title,tags\n" + "".join(f"{i},mug {i},Home & Kitchen\n" for i in range(3)))
    roles = ColumnRoles(fields=(Field("title", "text"), Field("tags", "tags")), image=None)
    vocab = build_vocabulary(listings, roles, tmp_path / "v", progress=False, max_df=1.0, min_label_support=1,
                             allowlist=["Home & Kitchen"], overrides={"add": {"home": ["Home & Kitchen"]}})
    assert label_of(vocab, "home kitchen") is not None


def typo_listings(tmp_path: Path) -> Path:
    """12 listings of "necklace", two of its typo "neckalce" (below min_support=3) and one of "neclace"."""
    listings = tmp_path / "typos.csv"
    titles = ["silver necklace"] * 6 + ["gold necklace"] * 6 + ["silver neckalce", "gold neckalce", "neclace"]
    listings.write_text("id,title\n" + "".join(f"{i},{title}\n" for i, title in enumerate(titles)))
    return listings


def test_merge_pulls_in_a_term_dropped_as_rare_with_its_support(tmp_path):
    roles = ColumnRoles(fields=(Field("title", "text"),), image=None)
    overrides = {"merge": {"necklace": ["neckalce"], "neclace": ["necklace"]}}
    vocab = build_vocabulary(typo_listings(tmp_path), roles, tmp_path / "v", progress=False, max_df=1.0,
                             min_label_support=5, overrides=overrides, cluster=False)
    necklace = vocab.labels.set_index("name").loc["neclace"]  # a dropped target is pulled in too
    assert label_of(vocab, "neckalce") == label_of(vocab, "necklace") == necklace["label_id"]
    assert necklace["support"] == 12 + 2 + 1
    assert (vocab.terms["term"] == "neckalce").sum() == 1  # listed once, in its label, not also as dropped


def test_delete_may_name_one_label_as_a_string(example_data, tmp_path):
    vocab = build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                             min_label_support=5, overrides={"delete": "mug"})
    assert label_of(vocab, "mug") is None


def test_no_labels_is_a_clear_error_not_a_broken_folder(tmp_path, monkeypatch):
    import weaklabel.labeling.vocabulary as vocabulary_module

    listings = tmp_path / "tiny.csv"
    listings.write_text("id,title\n1,red shirt\n2,blue shirt\n3,green shirt\n")
    roles = ColumnRoles(fields=(Field("title", "text"),), image=None)
    with monkeypatch.context() as patch:  # with no candidate the model is not even loaded
        patch.setattr(vocabulary_module, "TextEmbedder", None)
        with pytest.raises(ValueError, match="no labels: in 3 listings, no term occurs in at least min_support=3"):
            build_vocabulary(listings, roles, tmp_path / "a", progress=False)
    with pytest.raises(ValueError,
                       match="none of the 7 candidate terms makes a label of at least min_label_support=10"):
        build_vocabulary(listings, roles, tmp_path / "b", progress=False, min_support=1, max_df=1.0)


def test_a_model_that_cannot_be_loaded_is_a_one_line_error(tmp_path, monkeypatch):
    import sentence_transformers

    from weaklabel.labeling.embeddings import TextEmbedder

    with pytest.raises(ValueError, match="text model folder ./no-such-model not found"):
        TextEmbedder("./no-such-model")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="cannot load the text model folder .*broken"):
        TextEmbedder(str(tmp_path / "broken"), use_cache=False).encode(["mug"])

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to the hub.\nCheck your connection.")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", offline)
    embedder = TextEmbedder("someone/some-model", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot load the text model .no local folder; from the Hugging Face "
                                         "hub. 'someone/some-model': We couldn't connect to the hub.$"):
        embedder.encode(["mug"])


def test_a_merge_keeps_the_target_labels_name_even_when_a_source_is_more_frequent(example_vocab, example_data,
                                                                                 tmp_path):
    names = Vocabulary.load(example_vocab).labels["name"]
    first, last = names.iloc[0], names.iloc[-1]
    vocab = build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                             min_label_support=5, overrides={"merge": {last: [first]}})
    merged = vocab.labels.set_index("name").loc[last]
    assert first not in set(vocab.labels["name"]) and first in merged["aliases"]
    assert merged["label_id"] == 0  # the most supported label now


def test_renaming_a_label_to_another_labels_name_is_an_error(example_vocab, example_data, tmp_path):
    first, second = Vocabulary.load(example_vocab).labels["name"].iloc[:2]
    with pytest.raises(OverridesError, match=f"several labels the name '{first}'.*use \\[merge\\]"):
        build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                         min_label_support=5, overrides={"rename": {second: first}})


def test_assign_writes_every_listing_with_labels_scores_evidence(example_labeled):
    table = read_labeled(example_labeled)
    assert len(table) == 600 and table["id"].is_unique
    schema = pq.read_schema(next((example_labeled / "parts").glob("part-*.parquet")))
    assert str(schema.field("labels").type) == "list<element: int32>"
    assert str(schema.field("scores").type) == "list<element: float>"
    assert "struct<field: string, term: string>" in str(schema.field("evidence").type)
    assert pq.read_schema(example_labeled / "rejected.parquet").equals(REJECTED_LISTINGS_SCHEMA)
    assert {"true_type", "title", "price"} <= set(table.columns)  # passed through
    row = table.iloc[0]
    assert len(row["labels"]) == len(row["scores"]) == len(row["evidence"])
    assert all(np.diff(row["scores"]) <= 0)
    manifest = json.loads((example_labeled / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["listings_labelled"] + counts["listings_unlabelled"] == 600
    assert counts["coverage"] > 0.9
    assert Path(manifest["config"]["vocab"]).name.startswith("vocab")


def test_weak_labels_predict_the_true_type(example_labeled, example_vocab):
    """The best label of each frequent true type predicts it well (the benchmark does this on real data)."""
    table = read_labeled(example_labeled)
    names = pd.read_parquet(example_vocab / "labels.parquet")["name"].to_numpy()
    f1s = []
    for _, group in table.groupby("true_type"):
        if len(group) < 20:
            continue
        inside = pd.Series([l for labels in group["labels"] for l in labels]).value_counts()
        everywhere = pd.Series([l for labels in table["labels"] for l in labels]).value_counts()
        f1s.append(max(2 * inside[l] / (len(group) + everywhere[l]) for l in inside.index))
    assert np.mean(f1s) > 0.8, (names[:10], f1s)


def test_assign_keep_limits_passthrough(example_data, example_vocab, tmp_path):
    assign_labels(example_data / "listings.csv", example_vocab, tmp_path, keep=["true_type"], progress=False)
    assert list(read_labeled(tmp_path).columns) == ["id", "image", "labels", "scores", "evidence", "facets",
                                                   "true_type"]
    args = build_parser().parse_args(["assign", "--vocab", "v", "--out", "o", "--keep", "true_type", "--keep",
                                      "price", "listings.csv"])  # repeatable, so it never swallows the listings
    assert args.keep == ["true_type", "price"] and args.listings == ["listings.csv"]
    with pytest.raises(ValueError, match="no_such_column"):
        assign_labels(example_data / "listings.csv", example_vocab, tmp_path / "other", keep=["no_such_column"],
                      progress=False)


def test_unmatched_listing_is_kept_and_fallback_labels_it(example_vocab):
    frame = pd.DataFrame({"id": ["a", "b"], "title": ["zzqx wobble", "red t-shirt"], "description": ["", ""],
                          "tags": [[], []], "category_path": [[], []], "image": ["", ""]})
    plain = LabelAssigner(Vocabulary.load(example_vocab)).fit().transform(frame)
    assert list(plain["labels"].iloc[0]) == [] and len(plain["labels"].iloc[1]) > 0
    fallback = LabelAssigner(Vocabulary.load(example_vocab), fallback_threshold=-1.0, top_k=2).fit()
    result = fallback.transform(frame)
    assert len(result["labels"].iloc[0]) == 2
    assert [e["field"] for e in result["evidence"].iloc[0]] == ["embedding", "embedding"]
    assert list(result["labels"].iloc[1]) == list(plain["labels"].iloc[1])[:2]
    assert fallback.n_fallback_ == 1


def test_rejected_rows_are_written_with_their_reason(tmp_path, example_vocab):
    listings = tmp_path / "dump.csv"
    listings.write_text("id,title,image\n1,red mug,a.jpg\n1,blue mug,b.jpg\n2,,c.jpg\n3,green mug,d.jpg\n")
    roles = ColumnRoles(fields=(Field("title", "text"),))
    counts = assign_labels(listings, example_vocab, tmp_path / "out", roles=roles, progress=False)
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    assert sorted(rejected["reason"]) == ["duplicate_id", "empty_text"]
    assert counts["listings_labelled"] + counts["listings_unlabelled"] == 2


def test_cli_version_and_every_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("weaklabel ")
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"vocab", "assign", "example-data"} <= set(subcommands)
    for name, sub in subcommands.items():
        for action in sub._actions:
            assert action.help and action.help.strip(), f"weaklabel {name}: {action.dest} has no help"
            if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
                assert "default" in action.help, f"weaklabel {name} {action.option_strings[0]}: default not shown"
        with pytest.raises(SystemExit):
            main([*name.split(), "--help"])
        assert capsys.readouterr().out.startswith("usage: weaklabel")


def test_cli_runs_vocab_then_assign(example_data, tmp_path):
    csv = str(example_data / "listings.csv")
    assert main(["vocab", csv, "--text", "title", "--tags", "tags:0.5", "--out", str(tmp_path / "v"), "-q",
                 "--min-label-support", "5"]) == 0
    assert main(["assign", csv, "--vocab", str(tmp_path / "v"), "--out", str(tmp_path / "l"), "-q"]) == 0
    table = read_labeled(tmp_path / "l")
    assert len(table) == 600
    manifest = json.loads((tmp_path / "l" / "manifest.json").read_text())
    assert [f["column"] for f in manifest["config"]["roles"]["fields"]] == ["title", "tags"]


def test_cli_reports_a_missing_column_clearly_and_leaves_no_empty_folder(example_data, tmp_path, capsys):
    code = main(["vocab", str(example_data / "listings.csv"), "--text", "titel", "--out", str(tmp_path / "v"), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "titel" in err and "title" in err
    assert not (tmp_path / "v").exists()
    assert main(["vocab", str(example_data / "listings.csv"), "--text", "titel", "--out", str(tmp_path / "a/b/v"),
                 "-q"]) == 1
    assert not (tmp_path / "a").exists()  # every folder on the way that the command made
    (tmp_path / "runs" / "v" / "cache").mkdir(parents=True)
    (tmp_path / "runs" / "s").mkdir()  # made meanwhile by another command, no file in it yet
    _remove_empty(tmp_path / "runs" / "v", top=tmp_path / "runs")
    assert not (tmp_path / "runs" / "v").exists() and (tmp_path / "runs" / "s").is_dir()
    (tmp_path / "mine").mkdir()
    assert main(["vocab", str(example_data / "listings.csv"), "--text", "titel", "--out", str(tmp_path / "mine"),
                 "-q"]) == 1
    assert (tmp_path / "mine").is_dir()  # a folder the user made stays


def test_console_script_is_installed():
    result = subprocess.run([Path(sys.executable).parent / "weaklabel", "--version"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and result.stdout.startswith("weaklabel ")


def test_assign_on_a_dask_cluster_matches_inline_and_resolves_cross_file_duplicates(example_data, example_vocab,
                                                                                     tmp_path):
    from distributed import LocalCluster

    frame = pd.read_csv(example_data / "listings.csv")
    (tmp_path / "in").mkdir()
    frame.iloc[:250].to_csv(tmp_path / "in" / "a.csv", index=False)
    frame.iloc[200:450].to_csv(tmp_path / "in" / "b.csv", index=False)  # rows 200-249 repeat a.csv's ids
    frame.iloc[450:].to_parquet(tmp_path / "in" / "c.parquet")
    inline = assign_labels(tmp_path / "in", example_vocab, tmp_path / "inline", workers=1, rows_per_part=100,
                           progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        distributed = assign_labels(tmp_path / "in", example_vocab, tmp_path / "dask",
                                    scheduler=cluster.scheduler_address, rows_per_part=100, progress=False)
    assert inline == distributed
    a, b = read_labeled(tmp_path / "inline"), read_labeled(tmp_path / "dask")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 600 and a["id"].is_unique
    assert [p.name for p in sorted((tmp_path / "dask" / "parts").glob("part-*"))][:3] == [
        "part-00000-0000.parquet", "part-00000-0001.parquet", "part-00000-0002.parquet"]
    rejected = pd.read_parquet(tmp_path / "dask" / "rejected.parquet")
    assert (rejected["reason"] == "duplicate_id").sum() == 50 and rejected["source"].str.endswith("b.csv").all()
    counts = json.loads((tmp_path / "dask" / "manifest.json").read_text())["counts"]
    assert counts["rows_in"] == 650 and counts["rows_out"] == 600 and counts["rejected"]["duplicate_id"] == 50


def test_vocab_over_file_partitions_matches_one_file_and_drops_cross_file_duplicates(example_data, tmp_path):
    from distributed import LocalCluster

    frame = pd.read_csv(example_data / "listings.csv")
    (tmp_path / "in").mkdir()
    frame.iloc[:250].to_csv(tmp_path / "in" / "a.csv", index=False)
    frame.iloc[200:450].to_csv(tmp_path / "in" / "b.csv", index=False)  # rows 200-249 repeat a.csv's ids
    frame.iloc[450:].to_parquet(tmp_path / "in" / "c.parquet")
    whole = build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path / "whole", progress=False,
                             min_label_support=5)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        parts = build_vocabulary(tmp_path / "in", EXAMPLE_ROLES, tmp_path / "parts", progress=False,
                                 min_label_support=5, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(whole.labels, parts.labels)
    pd.testing.assert_frame_equal(whole.terms, parts.terms)
    pd.testing.assert_frame_equal(whole.boilerplate.to_frame(), parts.boilerplate.to_frame())
    pd.testing.assert_frame_equal(whole.facets, parts.facets)
    counts = json.loads((tmp_path / "parts" / "manifest.json").read_text())["counts"]
    assert counts["rows_in"] == 650 and counts["listings"] == 600 and counts["rejected"]["duplicate_id"] == 50
    assert counts["boilerplate"] == json.loads((tmp_path / "whole" / "manifest.json").read_text())["counts"][
        "boilerplate"]


def test_boilerplate_found_on_a_sample_is_stripped_from_every_listing(example_data, tmp_path):
    vocab = build_vocabulary(example_data / "listings.csv", EXAMPLE_ROLES, tmp_path, progress=False,
                             min_label_support=5, boilerplate_sample=300, facet_sample=300, workers=1)
    assert "ships within 1-3 business days" in set(vocab.boilerplate.to_frame()["pattern"])
    assert label_of(vocab, "business days") is None
    stripped = json.loads((tmp_path / "manifest.json").read_text())["counts"]["boilerplate"]["description"]
    assert stripped["listings"] > 300  # found on 300 listings, stripped from all 600


def test_append_labels_only_new_ids_and_matches_one_run_over_everything(example_data, example_vocab, tmp_path,
                                                                       capsys):
    frame = pd.read_csv(example_data / "listings.csv")
    days = tmp_path / "days"
    days.mkdir()
    frame.iloc[:300].to_csv(days / "day1.csv", index=False)
    out = tmp_path / "labeled"
    assign_labels(days, example_vocab, out, append=True, workers=1, progress=False)  # nothing to add to: all
    frame.iloc[250:].to_csv(days / "day2.csv", index=False)  # ids 250-299 are labelled already
    main(["assign", str(days), "--vocab", str(example_vocab), "--out", str(out), "--append", "-q"])
    printed = capsys.readouterr().out
    assert "appended 300 listings from 1 new or changed file (50 of their listings were labelled already)" in printed
    assign_labels(example_data / "listings.csv", example_vocab, tmp_path / "once", workers=1, progress=False)
    appended, once = read_labeled(out), read_labeled(tmp_path / "once")
    pd.testing.assert_frame_equal(appended, once)  # the same rows in the same order: new parts come last
    assert [p.name for p in sorted((out / "parts").glob("*"))] == ["part-00000-0000.parquet",
                                                                    "part-00001-0000.parquet"]
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert (counts["rows_in"], counts["rows_out"], counts["already_labelled"]) == (600, 600, 50)
    assert counts["listings_labelled"] == json.loads((tmp_path / "once" / "manifest.json").read_text())["counts"][
        "listings_labelled"]
    assert [Path(i["path"]).name for i in manifest["inputs"] if "sha256" in i] == ["day1.csv", "day2.csv"]
    before = (out / "manifest.json").read_bytes()
    assign_labels(days, example_vocab, out, append=True, workers=1, progress=False)  # nothing new: untouched
    assert (out / "manifest.json").read_bytes() == before and not (out / "parts.tmp").exists()


def test_append_refuses_other_settings_in_one_line(example_data, example_vocab, tmp_path, capsys):
    out = tmp_path / "labeled"
    assign_labels(example_data / "listings.csv", example_vocab, out, workers=1, progress=False)
    before = (out / "manifest.json").read_bytes()
    error = one_line_error(["assign", str(example_data / "listings.csv"), "--vocab", str(example_vocab), "--out",
                            str(out), "--append", "--top-k", "3", "-q"], capsys)
    assert "other settings (top_k)" in error and "--overwrite" in error
    assert (out / "manifest.json").read_bytes() == before


def test_quiet_embedder_draws_no_model_loading_bar(capfd):
    from weaklabel.labeling.embeddings import TextEmbedder

    capfd.readouterr()
    assert TextEmbedder(use_cache=False, progress=False).encode(["mug"]).shape == (1, 384)
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Batches" not in err


def test_the_embedding_bar_is_named_and_the_batches_are_sentence_transformers_own(capfd):
    from weaklabel.labeling.embeddings import TextEmbedder

    texts = ["mug", "a large ceramic coffee mug", "tea", "linen shirt with long sleeves", "rug"]
    embedder = TextEmbedder(use_cache=False, progress=True, desc="embed terms", batch_size=2)
    vectors = embedder.encode(texts)
    assert "embed terms: 100%" in capfd.readouterr().err
    direct = embedder.model.encode(texts, batch_size=2, normalize_embeddings=True, show_progress_bar=False)
    np.testing.assert_array_equal(vectors, direct)


def test_ctrl_c_ends_a_command_with_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    from weaklabel import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_example_data", interrupted)
    assert main(["example-data", "--out", str(tmp_path / "data")]) == 130
    err = capsys.readouterr().err
    assert "interrupted: the files already written are kept" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()  # the folder it created, still empty, is gone


def test_listings_with_no_term_at_all_get_the_one_line_no_labels_error(tmp_path):
    pd.DataFrame({"id": ["1", "2", "3"], "title": ["null", "N/A", "undefined"]}).to_csv(tmp_path / "l.csv", index=False)
    roles = ColumnRoles(fields=(Field("title", "text"),), id="id", image=None)
    with pytest.raises(ValueError, match="no labels: in 3 listings, no term occurs"):
        build_vocabulary(tmp_path / "l.csv", roles, tmp_path / "v", progress=False)


def test_labeled_folder_stands_alone_and_reads_with_standard_tools(example_labeled: Path, tmp_path: Path):
    import pyarrow.dataset as ds

    moved = tmp_path / "elsewhere" / "labeled"
    shutil.copytree(example_labeled, moved)
    frame = pd.read_parquet(moved / "parts")
    assert len(frame) == len(read_labeled(moved)) > 0
    schemas = {str(pq.read_schema(part)) for part in (moved / "parts").glob("*.parquet")}
    assert len(schemas) == 1 and "large_string" not in schemas.pop()
    assert ds.dataset(moved / "parts").count_rows() == len(frame)
    assert pd.read_feather(moved / "labels.feather").shape[0] > 0  # what the shards stage needs travels with it
    assert sorted(p.name for p in moved.rglob("*.parquet") if p.parent == moved) == ["rejected.parquet"]
