from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from weaklabel.synthetic import COLUMNS, PRODUCT_TYPES, generate_listings

REPO = Path(__file__).resolve().parents[1]


def _read(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "listings.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("small")
    return out, generate_listings(300, out, seed=3, image_size=32)


@pytest.fixture(scope="module")
def text_only(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return generate_listings(3000, tmp_path_factory.mktemp("text"), seed=0, images=False)


def test_columns_and_ids(small: tuple[Path, pd.DataFrame]) -> None:
    out, df = small
    assert tuple(df.columns) == COLUMNS
    assert tuple(_read(out).columns) == COLUMNS
    assert len(df) == 300 and df["id"].is_unique
    assert df["price"].dtype == np.float64 and (df["price"] > 0).all()
    assert set(df["true_type"]) <= {t.name for t in PRODUCT_TYPES}


def test_csv_round_trips_what_is_returned(small: tuple[Path, pd.DataFrame]) -> None:
    out, df = small
    back = _read(out)
    for column in ("id", "title", "description", "tags", "colour_attr", "true_type"):
        assert back[column].tolist() == df[column].tolist(), column


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_listings(40, a, seed=7, image_size=24)
    generate_listings(40, b, seed=7, image_size=24)
    generate_listings(40, c, seed=8, image_size=24)
    assert (a / "listings.csv").read_bytes() == (b / "listings.csv").read_bytes()
    assert (a / "listings.csv").read_bytes() != (c / "listings.csv").read_bytes()
    images_a = sorted(p.name for p in (a / "images").iterdir())
    assert images_a == sorted(p.name for p in (b / "images").iterdir())
    for name in images_a:
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()
    assert (a / "images" / images_a[0]).read_bytes() != (c / "images" / images_a[0]).read_bytes()


def test_text_does_not_depend_on_images(tmp_path: Path,
                                        small: tuple[Path, pd.DataFrame]) -> None:
    _, df = small
    plain = generate_listings(300, tmp_path, seed=3, images=False)
    assert (plain["image"] == "").all()
    assert not (tmp_path / "images").exists()
    pd.testing.assert_frame_equal(plain.drop(columns="image"), df.drop(columns="image"))


def test_one_rgb_image_per_row(small: tuple[Path, pd.DataFrame]) -> None:
    out, df = small
    assert (df["image"] == "images/" + df["id"].astype(str) + ".jpg").all()
    assert len(list((out / "images").iterdir())) == len(df)
    for rel in df["image"]:
        with Image.open(out / rel) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (32, 32)


def test_large_images_work(tmp_path: Path) -> None:
    df = generate_listings(3, tmp_path, image_size=512)
    with Image.open(tmp_path / df["image"][0]) as img:
        assert img.size == (512, 512)


def test_images_follow_true_colour(small: tuple[Path, pd.DataFrame]) -> None:
    out, df = small

    def mean_brightness(colour: str) -> float:
        rows = df[df["true_colour"] == colour]["image"]
        return float(np.mean([np.asarray(Image.open(out / r).convert("L")).mean() for r in rows]))

    assert mean_brightness("black") < mean_brightness("white") - 20


def test_type_distribution_is_long_tailed(text_only: pd.DataFrame) -> None:
    counts = text_only["true_type"].value_counts()
    share = counts / counts.sum()
    assert 0.15 < share.iloc[0] < 0.3
    assert counts.iloc[0] >= 5 * counts.median()
    assert (share < 0.01).sum() >= 5
    assert text_only["true_colour"].value_counts().iloc[0] >= 5 * text_only[
        "true_colour"].value_counts().iloc[-1]


def test_text_is_noisy(text_only: pd.DataFrame) -> None:
    df = text_only
    titles = df.loc[df["true_type"] == "t-shirt", "title"].str.lower()
    forms = {f for f in ("t-shirt", "tshirt", "t shirt", "tee") if titles.str.contains(f).any()}
    assert len(forms) >= 3
    assert df["title"].str.isupper().any() and df["title"].str.islower().any()
    assert df["title"].str.contains("|", regex=False).any()
    description = df["description"]
    assert description.str.contains("<p>|<br>|<li>").mean() > 0.1
    assert description.str.contains("&amp;", regex=False).any()
    assert 0.03 < (description == "").mean() < 0.15
    assert 0.1 < (df["colour_attr"] == "").mean() < 0.4
    assert (df["material_attr"] == "").mean() > 0.2
    assert (df["colour_attr"].str.lower().isin(["gray", "navy blue", "off white", "cream"])).any()
    true_category = df["true_type"].map({t.name: t.category for t in PRODUCT_TYPES})
    assert 0.03 < (df["category_path"] != true_category).mean() < 0.15


def _one_typo_away(word: str) -> set[str]:
    swaps = {word[:j] + word[j + 1] + word[j] + word[j + 2:] for j in range(len(word) - 1)}
    drops = {word[:j] + word[j + 1:] for j in range(len(word))}
    doubles = {word[:j] + word[j] + word[j:] for j in range(len(word))}
    return swaps | drops | doubles


def test_typos_are_rare_but_present(text_only: pd.DataFrame) -> None:
    variants = {v for t in PRODUCT_TYPES for v in t.variants}
    typos = {w for v in variants for w in _one_typo_away(v)} - variants
    tags = [tag for row in text_only["tags"] for tag in row.split(",")]
    exact, misspelt = sum(t in variants for t in tags), sum(t in typos for t in tags)
    assert exact > 1000
    assert 0.005 < misspelt / (exact + misspelt) < 0.08


def test_tags_are_two_to_six(text_only: pd.DataFrame) -> None:
    sizes = text_only["tags"].str.split(",").map(len)
    assert sizes.min() == 2 and sizes.max() == 6
    assert not text_only["tags"].str.contains(",,|^,|,$").any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be >= 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"image_size": 8}, "image_size must be >= 16"),
        ({"seed": -1}, "seed must be >= 0"),
    ],
)
def test_arguments_are_validated(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"n": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate_listings(args.pop("n"), tmp_path, **args)
    assert not (tmp_path / "listings.csv").exists()


def test_example_script_runs(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_example_data.py"),
         "--n", "12", "--seed", "1", "--image-size", "24", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 12 listings" in result.stdout
    assert len(_read(out)) == 12
    assert len(list((out / "images").glob("*.jpg"))) == 12
