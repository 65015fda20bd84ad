"""The shards folder's label gallery: what it shows, escaping, the links to it, and the page in a real browser."""

from __future__ import annotations

import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from weaklabel.datasets.gallery import GALLERY, MAX_LABELS, PER_LABEL, GalleryLabel, gallery_html
from weaklabel.eval.report import _gallery_link

HOSTILE = """<script>alert(1)</script> "quoted" & 'single'"""
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class GalleryPage(HTMLParser):
    """The label rows of a gallery page: per row its search text and its images' thumbnail indexes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.scripts = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr" and attributes.get("class") == "label":
            self.rows.append({"search": attributes["data-search"], "thumbnails": []})
        elif tag == "img":
            self.rows[-1]["thumbnails"].append(int(attributes["data-thumbnail"]))
        elif tag == "script":
            self.scripts += 1


def samples_per_label(shards: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for split in json.loads((shards / "manifest.json").read_text())["outputs"]["splits"].values():
        for label, n in split["label_histogram"].items():
            counts[int(label)] = counts.get(int(label), 0) + n
    return counts


def test_the_gallery_shows_the_most_supported_labels_first_each_with_its_images(example_shards: Path):
    html = (example_shards / GALLERY).read_text(encoding="utf-8")
    page = GalleryPage(html)
    labels = pq.read_table(example_shards / "labels.parquet").to_pandas()
    expected = labels.sort_values(["support", "label_id"], ascending=[False, True]).head(MAX_LABELS)
    assert [row["search"] for row in page.rows] == [" ".join([name, *aliases]).lower()
                                                    for name, aliases in zip(expected["name"], expected["aliases"])]
    samples = samples_per_label(example_shards)
    assert [len(row["thumbnails"]) for row in page.rows] == [min(PER_LABEL, samples.get(i, 0))
                                                             for i in expected["label_id"]]
    distinct = {index for row in page.rows for index in row["thumbnails"]}
    assert distinct == set(range(len(distinct)))  # every index points into the page's list, none of it unused
    assert len(html) < 2_000_000


def test_hostile_label_names_and_aliases_come_out_as_text():
    label = GalleryLabel(0, HOSTILE, [HOSTILE], support=5, tier="tail", samples=1, thumbnails=[0])
    html = gallery_html([label], ["data:image/jpeg;base64,AA"], total=1, vocab_report=f"../{HOSTILE}/report.html")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert GalleryPage(html).scripts == 2  # the page's own: thumbnails and search


def test_the_eval_report_links_the_gallery_relative_to_its_own_folder(example_shards: Path, tmp_path: Path):
    report = tmp_path / "eval" / "report.html"
    assert _gallery_link(report, example_shards) == os.path.relpath(example_shards / GALLERY, tmp_path / "eval")
    assert _gallery_link(report, tmp_path) is None  # shards without a gallery: no link


# ------------------------------------------------------------------------------------------------
# In a real browser
# ------------------------------------------------------------------------------------------------

def chromium_binary() -> str:
    """``WEAKLABEL_CHROMIUM``, else the first Chromium or Chrome on the PATH; skips the test when there is none."""
    found = os.environ.get("WEAKLABEL_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not found:
        pytest.skip(f"no Chromium: none of {', '.join(CHROMIUM_NAMES)} on the PATH and WEAKLABEL_CHROMIUM unset")
    return found


def visible_rows(page) -> int:
    return page.locator("tr.label:visible").count()


@pytest.mark.timeout(180)
def test_the_gallery_in_a_headless_browser_shows_every_image_and_filters_by_search(example_shards: Path,
                                                                                  tmp_path: Path):
    binary = chromium_binary()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    from PIL import Image

    rows = GalleryPage((example_shards / GALLERY).read_text(encoding="utf-8")).rows
    query = rows[0]["search"].split(" ")[0]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(30_000)
            page.goto((example_shards / GALLERY).as_uri())
            page.wait_for_function("[...document.images].every(image => image.complete)")
            screenshot = page.screenshot(path=tmp_path / "gallery.png", full_page=True)
            widths = page.eval_on_selector_all("img", "images => images.map(image => image.naturalWidth)")
            assert len(widths) == sum(len(row["thumbnails"]) for row in rows) > 0
            assert min(widths) > 0, f"{widths.count(0)} broken image(s), see {tmp_path / 'gallery.png'}"
            assert visible_rows(page) == len(rows)

            page.locator("#search").press_sequentially(query.upper())
            assert visible_rows(page) == sum(query in row["search"] for row in rows) >= 1
            page.locator("#search").fill("no label is called this")
            assert visible_rows(page) == 0 and page.locator("#count").inner_text() == f"0 of {len(rows)} labels"
            page.locator("#search").fill("")
            assert visible_rows(page) == len(rows)
        finally:
            browser.close()
    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    assert image.width >= 1200 and len(image.getcolors(maxcolors=1 << 20)) > 100  # thumbnails drawn, not a blank page
