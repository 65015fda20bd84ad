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

**No all-pairs comparison.** Candidates come from buckets: the signs of the signature's coefficients
against their median make a 256-bit hash, cut into 10 windows of 24 bits; two images are candidates
when their hashes (plain or mirrored) have an equal window at the same place (16-bit windows found
no more generated copies and gave 12 times the candidates on the fashion catalogue). Inside a
bucket, images meet their next ``NEIGHBOURS`` in input order only, so a bucket of thousands of
look-alikes costs linear work. Work and memory grow with the number of images, not its square.

**Groups** (:func:`leaders`) are stars, not chains: each image joins the earliest image it copies
that leads a group itself, so similar-looking products cannot link up through small steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy.fft import dctn

HASH_SIDE = 32  # grey thumbnail side the DCT is taken of
FREQUENCIES = 16  # 16 x 16 lowest frequencies
FINGERPRINT_BYTES = FREQUENCIES * FREQUENCIES * 2  # float16
MIN_SIMILARITY = 0.998
WINDOW_BYTES = 3  # 24-bit bucket keys
WINDOWS = FREQUENCIES * FREQUENCIES // (8 * WINDOW_BYTES)  # 10: the hash's last 16 bits are no bucket
NEIGHBOURS = 16
NEAR_MODES = ("group", "drop", "off")
PAIR_BLOCK = 4096  # candidate pairs compared at a time (their signatures stay in cache)
_MIRROR = np.tile((-1.0) ** np.arange(FREQUENCIES), FREQUENCIES).astype(np.float32)  # odd horizontal frequencies


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
    a, b = _candidates(signatures)
    found = []
    for start in range(0, len(a), PAIR_BLOCK):
        first, second = a[start:start + PAIR_BLOCK], b[start:start + PAIR_BLOCK]
        similarity = _similarity(signatures[first], signatures[second], mirrored[second])
        keep = similarity >= min_similarity
        found.append(pd.DataFrame({"a": first[keep], "b": second[keep],
                                   "distance": np.round(1.0 - similarity[keep].astype(np.float64), 6)}))
    columns = {"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64), "distance": np.zeros(0, np.float64)}
    return pd.concat([pd.DataFrame(columns), *found], ignore_index=True)


def pair_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """1 - the similarity of row i of ``first`` and row i of ``second`` (fingerprints)."""
    second = _signatures(second)
    return np.round(1.0 - _similarity(_signatures(first), second, second * _MIRROR).astype(np.float64), 6)


def leaders(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """For each of ``n`` rows (in input order), the row that leads its group: the first earlier row it
    copies that leads a group itself, else the row itself."""
    leader = np.arange(n)
    ordered = pairs.sort_values(["b", "a"], kind="stable")
    for a, b in zip(ordered["a"].to_numpy(), ordered["b"].to_numpy()):
        if leader[b] == b and leader[a] == a:
            leader[b] = a
    return leader


def _signatures(fingerprints: np.ndarray) -> np.ndarray:
    """The fingerprints' signatures as unit float32 vectors (a blank image's stays zero)."""
    prints = np.ascontiguousarray(fingerprints, dtype=np.uint8).reshape(-1, FINGERPRINT_BYTES)
    vectors = prints.view(np.float16).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _candidates(signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (a < b, unique) that share a bucket (module docstring): a window of the plain or
    mirrored hash of one equal to the same window of the other's."""
    n = len(signatures)
    hashes = np.stack([_bits(signatures), _bits(signatures * _MIRROR)], axis=1)  # n x 2 x 32 bytes
    rows = np.repeat(np.arange(n, dtype=np.int64), 2)
    found: list[np.ndarray] = [np.zeros(0, np.int64)]
    for start in range(0, WINDOWS * WINDOW_BYTES, WINDOW_BYTES):
        window = hashes[:, :, start:start + WINDOW_BYTES].astype(np.int64)
        key = window[..., 0] << 16 | window[..., 1] << 8 | window[..., 2]
        bucket = np.unique((key << 32).ravel() | rows)  # by key, then row
        keys, members = bucket >> 32, bucket & 0xFFFFFFFF
        for step in range(1, NEIGHBOURS + 1):
            same = keys[step:] == keys[:-step]
            if not same.any():
                break
            found.append(members[:-step][same] * n + members[step:][same])
    pairs = np.unique(np.concatenate(found))
    return pairs // max(n, 1), pairs % max(n, 1)


def _bits(signatures: np.ndarray) -> np.ndarray:
    """The 256-bit hash of each signature: its coefficients above their median."""
    return np.packbits(signatures > np.median(signatures, axis=1, keepdims=True), axis=1)


def _similarity(first: np.ndarray, second: np.ndarray, second_mirrored: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit signatures, or of the first and the second's mirror image where higher."""
    return np.maximum(np.einsum("ij,ij->i", first, second), np.einsum("ij,ij->i", first, second_mirrored))

