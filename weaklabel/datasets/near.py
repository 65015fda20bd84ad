"""Near-duplicate images: a perceptual fingerprint per image, and groups of images that copy each other.

A marketplace reuses photos: re-encoded, resized, mirrored or lightly recoloured by another seller.
Byte-identical copies are found by their sha256; these are found by what they look like.

**The fingerprint** (:func:`fingerprint`, ``FINGERPRINT_BYTES`` = 512 bytes, from the pixels the
resizer already holds, about 0.13 ms an image): the 16 x 16 lowest-frequency DCT coefficients of a
32 x 32 grey thumbnail (Lanczos), the constant term zeroed, as float16: the frequency content of a
pHash, kept as numbers rather than cut into bits.

**A pair decision** (:func:`near_pairs`): two images are copies when the cosine similarity of their
signatures, or of one's and the other's mirror image (a mirror flips the sign of the odd horizontal
frequencies), is at least ``min_similarity`` (default ``MIN_SIMILARITY``, 0.998).

Why numbers and not the usual 64- or 256-bit hash: on product photos shot on one template (models
in one pose, wallets on white), bit hashes put different products within a few bits of each other
(the 64-bit pHash gives distinct flip-flops the same hash); the similarity keeps most of them under
0.998, where re-encoded, resized, mirrored and recoloured copies lie above it. The signature is grey:
one product's colourways shot on one template pass, and are grouped, which keeps retrieval honest
too (an encoder that saw one finds the other about as easily as a copy). Crops are not found: a crop
of 3 to 10% moves every frequency further than different products of one template are apart. The
figures are printed by ``benchmarks/near_duplicates.py`` and quoted in the README.

**No all-pairs comparison.** Candidates come from buckets: the signs of the signature's projections
on ``HASH_BITS`` fixed random directions make a hash (SimHash: two signatures differ in a share of
bits that grows with the angle between them), cut into windows of 32 bits; two images are candidates
when their hashes (plain or mirrored) have an equal window at the same place. Inside a bucket,
images meet their next ``NEIGHBOURS`` in input order only, so a bucket of thousands of look-alikes
costs linear work. Work and memory grow with the number of images, not its square. The buckets
find 98% of the pairs that comparing every pair finds on the fashion catalogue (the hash of the
coefficients against their median found 86%: small coefficients flip sign easily);
``benchmarks/near_duplicates.py`` measures it.

**Groups** (:func:`groups`) are the connected components of the pairs, so copies of copies stay
together (and in one split); each member other than the group's first records its *partner*, the
member it is most similar to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy import sparse
from scipy.fft import dctn
from scipy.sparse.csgraph import connected_components

HASH_SIDE = 32  # grey thumbnail side the DCT is taken of
FREQUENCIES = 16  # 16 x 16 lowest frequencies
FINGERPRINT_BYTES = FREQUENCIES * FREQUENCIES * 2  # float16
MIN_SIMILARITY = 0.998
SIMILARITY_TOLERANCE = 1e-6  # float32 rounding: identical signatures come out at 0.9999999
HASH_BITS = 384
WINDOW_BITS = 32
ROW_BITS = 31  # a bucket entry is (window << ROW_BITS) | row in one int64
NEIGHBOURS = 16
NEAR_MODES = ("group", "drop", "off")
PAIR_BLOCK = 4096  # candidate pairs compared at a time (their signatures stay in cache)
_MIRROR = np.tile((-1.0) ** np.arange(FREQUENCIES), FREQUENCIES).astype(np.float32)  # odd horizontal frequencies
_DIRECTIONS = np.random.default_rng(0).standard_normal((FREQUENCIES * FREQUENCIES, HASH_BITS)).astype(np.float32)


def fingerprint(image: Image.Image) -> bytes:
    """The fingerprint of an RGB image (module docstring), ``FINGERPRINT_BYTES`` long."""
    thumbnail = image.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    grey = np.asarray(thumbnail, dtype=np.float32)
    low = dctn(grey, norm="ortho")[:FREQUENCIES, :FREQUENCIES]
    low[0, 0] = 0.0
    return low.astype(np.float16).tobytes()


def near_pairs(fingerprints: np.ndarray, min_similarity: float = MIN_SIMILARITY) -> pd.DataFrame:
    """Pairs of rows of ``fingerprints`` (uint8, n x FINGERPRINT_BYTES) that are copies (module
    docstring): columns ``a`` < ``b`` (row numbers) and ``distance`` (1 - similarity)."""
    signatures = _signatures(fingerprints)
    mirrored = signatures * _MIRROR
    a, b = _candidates(signatures, mirrored)
    found = []
    for start in range(0, len(a), PAIR_BLOCK):
        first, second = a[start:start + PAIR_BLOCK], b[start:start + PAIR_BLOCK]
        similarity = _similarity(signatures[first], signatures[second], mirrored[second])
        keep = similarity >= min_similarity - SIMILARITY_TOLERANCE
        found.append(pd.DataFrame({"a": first[keep], "b": second[keep], "distance": _distance(similarity[keep])}))
    columns = {"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64), "distance": np.zeros(0, np.float64)}
    return pd.concat([pd.DataFrame(columns), *found], ignore_index=True)


def pair_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """1 - the similarity of row i of ``first`` and row i of ``second`` (fingerprints)."""
    second = _signatures(second)
    return _distance(_similarity(_signatures(first), second, second * _MIRROR))


def groups(n: int, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``n`` rows: the first row of its group (itself when it has no copy), its partner
    (the row of its group it is most similar to; -1 for a row without copies) and their distance."""
    graph = sparse.coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs["a"], pairs["b"])), shape=(n, n))
    component = connected_components(graph, directed=False)[1]
    first = pd.Series(np.arange(n)).groupby(component).transform("min").to_numpy()
    both = pd.DataFrame({"row": np.concatenate([pairs["a"], pairs["b"]]),
                         "partner": np.concatenate([pairs["b"], pairs["a"]]),
                         "distance": np.concatenate([pairs["distance"], pairs["distance"]])})
    closest = both.sort_values(["row", "distance", "partner"], kind="stable").drop_duplicates("row")
    partner, distance = np.full(n, -1, dtype=np.int64), np.full(n, np.nan)
    partner[closest["row"].to_numpy()] = closest["partner"].to_numpy()
    distance[closest["row"].to_numpy()] = closest["distance"].to_numpy()
    return first, partner, distance


def _signatures(fingerprints: np.ndarray) -> np.ndarray:
    """The fingerprints' signatures as unit float32 vectors (a blank image's stays zero)."""
    prints = np.ascontiguousarray(fingerprints, dtype=np.uint8).reshape(-1, FINGERPRINT_BYTES)
    vectors = prints.view(np.float16).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _candidates(signatures: np.ndarray, mirrored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (a < b, unique) that share a bucket (module docstring): a window of the plain or
    mirrored hash of one equal to the same window of the other's."""
    n = len(signatures)
    words = np.stack([_hash(signatures), _hash(mirrored)], axis=1)  # n x 2 x HASH_BITS / 32 windows
    rows = np.repeat(np.arange(n, dtype=np.int64), 2)
    found: list[np.ndarray] = [np.zeros(0, np.int64)]
    for window in range(words.shape[2]):
        bucket = np.unique(words[:, :, window].astype(np.int64).ravel() << ROW_BITS | rows)  # by key, then row
        keys, members = bucket >> ROW_BITS, bucket & ((1 << ROW_BITS) - 1)
        for step in range(1, NEIGHBOURS + 1):
            same = keys[step:] == keys[:-step]
            if not same.any():
                break
            found.append(members[:-step][same] * n + members[step:][same])
    pairs = np.unique(np.concatenate(found))
    return pairs // max(n, 1), pairs % max(n, 1)


def _hash(signatures: np.ndarray) -> np.ndarray:
    """The SimHash of each signature as 32-bit windows (n x HASH_BITS / 32, uint32)."""
    bits = np.packbits(signatures @ _DIRECTIONS > 0, axis=1)
    return bits.view(">u4")


def _similarity(first: np.ndarray, second: np.ndarray, second_mirrored: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit signatures, or of the first and the second's mirror image where higher."""
    return np.maximum(np.einsum("ij,ij->i", first, second), np.einsum("ij,ij->i", first, second_mirrored))


def _distance(similarity: np.ndarray) -> np.ndarray:
    return np.round(np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0), 6)
