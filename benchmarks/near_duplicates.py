"""Near-duplicate images: how well the shards stage finds them, and what it costs.

(a) **Generated copies.** ``--bases`` distinct generated photos (``weaklabel.synthetic.copies.scene``,
    128 px); 30% of them get one or two near-copies (``near_copy``: re-encoded at JPEG quality 30-90,
    resized to 40-80%, cropped by 3-10% of each side, mirrored, or recoloured), each saved as JPEG at
    quality 60-90. Every image goes through the stage's own image path (``process_image`` at the
    stage's default size 256, with its fingerprint) and grouping (``near_pairs``, ``groups``). A pair
    decision is "these two images are in one group"; the truth is "one is a copy of the other, or both
    copy one photo". Prints precision and recall of the pair decisions (targets: recall >= 0.95 at
    precision >= 0.99) and, per kind of copy, the share grouped with its original.
(b) **Fashion.** The real ``shards`` stage on the whole fashion catalogue (labels from the titles by the
    real ``vocab`` and ``assign`` stages; size 256): groups found, images in groups, and how many
    groups have members in more than one split, read back from the tar files (target 0). Skipped when
    ``--fashion-dir`` is absent.
(c) **Cost.** Images/s of the stage on ``--photos-n`` generated 448 px photos (as
    ``benchmarks/shards_throughput.py`` (b)), with near-duplicates on (``group``) and ``off``, each run
    ``--repeats`` times, best run kept (target: at most 10% slower).

    python benchmarks/near_duplicates.py [--bases 2000] [--fashion-dir DIR] [--photos-n 2000]
"""

from __future__ import annotations

# Only the standard library at the top: where Dask spawns its workers it re-imports this module.
import argparse
import os
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_RECALL, TARGET_PRECISION, TARGET_SLOWDOWN = 0.95, 0.99, 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bases", type=int, default=2000, help="distinct generated photos for (a) (default: 2000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of (a) (default: 1)")
    parser.add_argument("--fashion-dir", type=Path, default=Path("/work/shared/data/fashion"),
                        help="fashion dump with listings.csv and images/ (default: /work/shared/data/fashion)")
    parser.add_argument("--photos-n", type=int, default=2000, help="generated 448 px photos for (c) (default: 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each arm of (c) (default: 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for (b) and (c) (default: 2)")
    parser.add_argument("--skip", action="append", default=[], choices=("a", "b", "c"), help="skip a part")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="near-bench-") as tmp:
        if "a" not in args.skip:
            generated_copies(args.bases, args.seed)
        if "b" not in args.skip:
            if (args.fashion_dir / "listings.csv").is_file():
                fashion_groups(args.fashion_dir, Path(tmp) / "fashion", args.workers)
            else:
                print(f"(b) skipped: {args.fashion_dir}/listings.csv is absent")
        if "c" not in args.skip:
            cost(args.photos_n, Path(tmp) / "photos", args.workers, args.repeats)


def generated_copies(n_bases: int, seed: int) -> None:
    import io

    import numpy as np

    from weaklabel.datasets import near
    from weaklabel.datasets.images import ImageOptions, process_image
    from weaklabel.synthetic.copies import COPY_KINDS, near_copy, scene

    rng = np.random.default_rng(seed)
    bases = [scene(np.random.default_rng([seed, i])) for i in range(n_bases)]
    images, origin, kinds = list(bases), list(range(n_bases)), ["original"] * n_bases
    for i, base in enumerate(bases):
        if rng.random() < 0.3:
            for _ in range(int(rng.integers(1, 3))):
                kind = COPY_KINDS[int(rng.integers(len(COPY_KINDS)))]
                images.append(near_copy(base, kind, rng))
                origin.append(i)
                kinds.append(kind)
    options = ImageOptions()
    prints = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.choice([60, 75, 90])))
        prints.append(np.frombuffer(process_image(buffer.getvalue(), options, fingerprint=True).fingerprint, np.uint8))
    leader = near.groups(len(prints), near.near_pairs(np.stack(prints)))[0]
    origin, kinds = np.array(origin), np.array(kinds)
    upper = np.triu_indices(len(images), 1)
    truth = (origin[:, None] == origin[None, :])[upper]
    decided = (leader[:, None] == leader[None, :])[upper]
    hits = int((truth & decided).sum())
    precision, recall = hits / max(1, int(decided.sum())), hits / max(1, int(truth.sum()))
    print(f"(a) generated: {n_bases} photos and {len(images) - n_bases} near-copies ({int(truth.sum())} copy pairs)")
    print(f"    pair decisions: precision {precision:.4f} (target >= {TARGET_PRECISION}: "
          f"{met(precision >= TARGET_PRECISION)}), recall {recall:.4f} (target >= {TARGET_RECALL}: "
          f"{met(recall >= TARGET_RECALL)})")
    uncropped = np.isin(kinds, ["original", *(k for k in COPY_KINDS if k != "crop")])
    pair_uncropped = uncropped[upper[0]] & uncropped[upper[1]]
    uncropped_recall = (truth & decided & pair_uncropped).sum() / (truth & pair_uncropped).sum()
    print(f"    recall without the crops: {uncropped_recall:.4f}")
    originals = {o: i for i, (o, k) in enumerate(zip(origin, kinds)) if k == "original"}
    prints = np.stack(prints)
    for kind in COPY_KINDS:
        rows = np.flatnonzero(kinds == kind)
        grouped = np.mean([leader[i] == leader[originals[origin[i]]] for i in rows]) if len(rows) else float("nan")
        similarity = 1 - near.pair_distance(prints[rows], prints[[originals[o] for o in origin[rows]]])
        low, median = np.quantile(similarity, [0.05, 0.5]) if len(rows) else (float("nan"),) * 2
        print(f"    {kind:9s} {len(rows):4d} copies, grouped with their original: {grouped:.2f}; similarity to it: "
              f"median {median:.4f}, 5th percentile {low:.4f}")


def fashion_groups(fashion: Path, work: Path, workers: int) -> None:
    import pandas as pd
    from shards_throughput import fashion_labeled, weaklabel_run

    from weaklabel.datasets.format import sample_key

    labeled = fashion_labeled(fashion, 10 ** 9, work)
    images, seconds, _ = weaklabel_run(labeled, fashion, work / "shards", workers)
    duplicates = pd.read_parquet(work / "shards" / "duplicates.parquet")
    near = duplicates[duplicates["kind"].eq("near")]
    split_of_key = {}
    for tar in sorted((work / "shards").glob("*.tar")):
        with tarfile.open(tar) as handle:
            split_of_key.update((member.name.partition(".")[0], tar.name.split("-")[0]) for member in handle)
    members = pd.concat([near[["group", "id"]], near[["group"]].drop_duplicates().assign(id=lambda f: f["group"])])
    members["split"] = [split_of_key.get(sample_key(m)) for m in members["id"]]
    spanning = int((members.dropna(subset=["split"]).groupby("group")["split"].nunique() > 1).sum())
    sizes = members.groupby("group").size()
    exact = int(duplicates["kind"].eq("exact").sum())
    print(f"(b) fashion: {images} images in {seconds:.0f} s; {exact} exact duplicates; {len(sizes)} near-duplicate "
          f"groups holding {len(members)} images (largest {sizes.max() if len(sizes) else 0}); groups spanning "
          f"splits: {spanning} (target 0: {met(spanning == 0)})")
    paths = sorted((fashion / "images").glob("*.jpg"))
    exhaustive_check(paths, [split_of_key.get(sample_key(p.stem)) for p in paths])


def exhaustive_check(paths: list[Path], splits: list[str | None]) -> None:
    """Every pair of written images compared (blocked matrix products): how many of the pairs at or
    above the threshold the buckets find, how many such pairs lie in two splits, and how pairs spread
    just under and over the threshold (under it: mostly different products shot on one template)."""
    import numpy as np

    from weaklabel.datasets import near
    from weaklabel.datasets.images import ImageOptions, process_image

    split = np.array(splits, dtype=object)
    written = np.array([i for i, name in enumerate(splits) if name is not None], dtype=np.int64)
    prints = np.stack([np.frombuffer(process_image(paths[i].read_bytes(), ImageOptions(), fingerprint=True)
                                     .fingerprint, np.uint8) for i in written])
    signatures = near._signatures(prints)
    mirrored = signatures * near._MIRROR
    rows, columns, similarities = [], [], []
    for start in range(0, len(written), 2048):
        block = signatures[start:start + 2048]
        similarity = np.maximum(block @ signatures.T, block @ mirrored.T)
        row, column = np.nonzero(similarity >= 0.99)
        keep = column > row + start
        rows.append(row[keep] + start)
        columns.append(column[keep])
        similarities.append(similarity[row[keep], column[keep]])
    a, b, similarity = np.concatenate(rows), np.concatenate(columns), np.concatenate(similarities)
    above = similarity >= near.MIN_SIMILARITY - near.SIMILARITY_TOLERANCE
    true_pairs = set(zip(a[above].tolist(), b[above].tolist()))
    found = near.near_pairs(prints)
    recall = len(true_pairs & set(zip(found["a"].tolist(), found["b"].tolist()))) / max(1, len(true_pairs))
    straddling = int((split[written[a[above]]] != split[written[b[above]]]).sum())
    print(f"    every pair of the {len(written)} written images compared: {len(true_pairs)} at or above the "
          f"threshold; the buckets find {recall:.3f} of them; {straddling} such pairs lie in two splits")
    edges = [0.99, 0.995, 0.998, 0.999, 1.0001]
    counts = np.histogram(similarity, bins=edges)[0]
    print("    pairs by similarity: " + ", ".join(f"{low}-{min(high, 1.0)}: {n}"
                                               for low, high, n in zip(edges, edges[1:], counts)))


def cost(n: int, work: Path, workers: int, repeats: int) -> None:
    from shards_throughput import photos_labeled, weaklabel_run

    labeled = photos_labeled(n, 448, work)
    rates = {}
    for mode in ("off", "group"):
        runs = [weaklabel_run(labeled, work, work / f"{mode}-{run}", workers, near_duplicates=mode)
                for run in range(repeats)]
        rates[mode] = max(images / seconds for images, seconds, _ in runs)
    slowdown = 1 - rates["group"] / rates["off"]
    print(f"(c) cost on {n} photos 448x448, {workers} workers, best of {repeats}: off {rates['off']:,.0f} images/s, "
          f"group {rates['group']:,.0f} images/s: {slowdown:+.1%} slower (target <= {TARGET_SLOWDOWN:.0%}: "
          f"{met(slowdown <= TARGET_SLOWDOWN)})")


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    main()
