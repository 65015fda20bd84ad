"""The two HTML reports rendered from small hand-made inputs: hostile strings come out as text, numbers as before."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from weaklabel.eval.report import report_html
from weaklabel.eval.retrieval import METRICS
from weaklabel.labeling.boilerplate import Boilerplate
from weaklabel.labeling.report import write_vocab_report
from weaklabel.labeling.vocabulary import Vocabulary
from weaklabel.reports import environment, format_metric
from weaklabel.tiers import TIERS

HOSTILE = """<script>alert(1)</script> "quoted" & 'single'"""
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &#34;quoted&#34; &amp; &#39;single&#39;"


class Page(HTMLParser):
    """The tags, attribute values and text a browser would see."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [value for _, value in attrs if value is not None]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_shown_as_text(html: str, times: int) -> None:
    page = Page(html)
    assert "script" not in page.tags and "<script>" not in html
    assert html.count(ESCAPED) == times
    assert sum(HOSTILE in t for t in page.text) + sum(HOSTILE in a for a in page.attributes) >= 1


def hostile_vocabulary() -> Vocabulary:
    labels = pd.DataFrame({"label_id": [0, 1], "name": ["shirt", HOSTILE], "aliases": [["tee"], [HOSTILE]],
                           "support": [120, 30], "tier": ["head", "tail"], "informativeness": [1.0, 1.0]})
    terms = pd.DataFrame({"term": ["shirt", HOSTILE], "field": ["title", "title"], "support": [5, 3],
                          "label_id": pd.array([0, pd.NA], dtype="Int64"), "similarity": [1.0, 0.0],
                          "how": ["kept", "dropped:min_support"]})
    boilerplate = Boilerplate.from_frame(pd.DataFrame({
        "field": ["description"], "pattern": ["ships within 1-3 business days"], "kind": ["sentence"], "listings": [40],
        "fillers": [1], "group": [HOSTILE], "example": ["ships within 1-3 business days."]}))
    stats = {"listings": 1234, "distinct_terms": 56, "candidates": 7, "labelled_terms": 3, "support_before": [9, 4, 1],
             "dropped_terms": {"min_support": 1}, "boilerplate": {"description": {"patterns": 1, "words": 12345,
                                                                                  "listings": 6789}}}
    return Vocabulary(labels=labels, terms=terms, label_embeddings=np.zeros((2, 4)),
                      analyzer={"ngram_range": (1, 2), "stopwords": []}, stats=stats, boilerplate=boilerplate)


def test_vocab_report_escapes_names_aliases_and_boilerplate(tmp_path: Path):
    read = {"rows_in": 1236, "rows_out": 1234, "rejected": {"malformed_line": 1, "missing_id": 0, "duplicate_id": 1}}
    write_vocab_report(hostile_vocabulary(), tmp_path / "report.html", read)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert_shown_as_text(html, times=4)  # label name, alias, boilerplate group, dropped term
    assert "1236 listings read: 1234 kept, 2 rejected (malformed_line 1, duplicate_id 1)." in html
    assert "1234 kept listings" in html and "<b>2 labels</b>" in html and "(head 1, torso 0, tail 1)" in html
    assert "description: 1 patterns, 12,345 words removed from 6,789 listings" in html
    assert html.count("data:image/png;base64,") == 1


def summary(value: float | None) -> dict:
    return {**dict.fromkeys(METRICS, value), "queries": 10, "queries_without_relevant": 2}


def model(value: float, labels: list[str]) -> dict:
    tiers = {t: summary(None if t == "tail" else value) for t in TIERS}
    retrieval = {"labels": {"overall": summary(value), "tiers": tiers}}
    per_label = [{"label_id": i, "name": name, "tier": "head", "positives": 3, "ap": value}
                 for i, name in enumerate(labels)]
    classification = {"labels": {"map_macro": value, "map_micro": value, "per_label": per_label,
                                 "tiers": {t: {"map_macro": value} for t in TIERS}}}
    return {"queries": 12, "gallery": 12, "retrieval": retrieval, "classification": classification, "probes": {},
            "efficiency": {"throughput": 2469.1356 * value}}  # 1,234.6 img/s for the best


def test_eval_report_escapes_model_names_label_names_and_image_ids():
    metrics = {"split": "val", "gallery_split": None, "shards": "shards", "relevance": ["labels"],
               "weaklabel_version": "0", "models": {"resnet": model(0.5, ["shirt", HOSTILE]),
                                                    HOSTILE: model(0.25, ["shirt", HOSTILE])}}
    examples = {"resnet": [{"query": "q1", "neighbours": [{"id": HOSTILE, "relevant": True, "score": 0.91234},
                                                          {"id": "absent", "relevant": False, "score": 0.5}]}],
                HOSTILE: []}
    html = report_html(metrics, examples, {"q1": "data:image/jpeg;base64,AA", HOSTILE: "data:image/jpeg;base64,BB"})
    # model: side-by-side head, tier table, AP column, grid title; label name; image id: alt, caption
    assert_shown_as_text(html, times=9)
    assert HOSTILE in Page(html).attributes  # the alt attribute holds the id, quotes and all
    assert "<th>resnet</th><th>" + ESCAPED + "</th>" in html
    assert "<tr><th>retrieval labels: recall@1</th><td><b>0.5000</b></td><td>0.2500</td></tr>" in html
    assert "<td><b>1,234.6</b></td>" in html and "<td>—</td>" in html  # throughput, a tail tier without queries
    assert '<td class="rel"><img src="data:image/jpeg;base64,BB"' in html and '<div class="cap">0.912</div>' in html
    assert '<div class="missing">absent<br>(not in the shards)</div>' in html
    assert "<p>No query has a relevant item.</p>" in html and html.count("data:image/png;base64,") == 2
    assert "Queries: the 12 images of the <b>val</b> split" in html and "<th>queries averaged</th>" in html


def test_metric_values_format_as_in_the_terminal_table():
    assert [format_metric(v) for v in (None, 0.12345, 12345.678, 7, "x")] == ["—", "0.1235", "12,345.7", "7", "x"]
    assert environment() is environment()  # one Environment, built once
