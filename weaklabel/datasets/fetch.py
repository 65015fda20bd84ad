"""Getting an image's original bytes: a local path, a ``file://`` URL or an http(s) URL.

The fetcher of the img2dataset split (reader → fetcher → resizer → writer): it only returns
bytes or raises :class:`~weaklabel.datasets.reasons.Rejected`; it never decodes. Remote fetches
are bounded in time (socket timeout), size (``max_download_bytes``, checked against Content-Length
and while reading; local files too) and effort (``retries`` with exponential backoff, only for failures that may pass:
timeouts, connection errors, 408/429 and 5xx answers). Concurrency is the caller's thread pool.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, url2pathname, urlopen

from .. import __version__
from .reasons import Rejected

DEFAULT_USER_AGENT = f"weaklabel/{__version__} (image fetcher for training shards)"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
GONE_STATUS = frozenset({404, 410})


@dataclass(frozen=True)
class FetchOptions:
    """Where relative paths start and how hard to try for remote images."""

    images_root: str = "."
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    max_download_bytes: int = 20_000_000
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {self.backoff}")
        if self.max_download_bytes < 1:
            raise ValueError(f"max_download_bytes must be >= 1, got {self.max_download_bytes}")


def fetch(source: str, options: FetchOptions) -> bytes:
    """The bytes of ``source``: a path relative to ``images_root``, an absolute path, or a URL."""
    if not source:
        raise Rejected("missing_image")
    if "://" not in source:
        return _read_file(Path(options.images_root) / source, options.max_download_bytes)
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_url(source, options)
    if scheme == "file":
        return _read_file(Path(url2pathname(urlsplit(source).path)), options.max_download_bytes)
    raise Rejected("fetch_error", f"unsupported URL scheme {scheme!r}")


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise Rejected("too_large", f"{path} has {size} bytes, over {max_bytes}")
            return handle.read()
    except FileNotFoundError:
        raise Rejected("not_found", str(path)) from None
    except OSError as error:
        raise Rejected("fetch_error", f"{type(error).__name__}: {error}") from None


class _Retry(Exception):
    """A failure worth another attempt; carries the rejection to raise once attempts run out."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(str(rejected))
        self.rejected = rejected


def _fetch_url(url: str, options: FetchOptions) -> bytes:
    for attempt in range(options.retries + 1):
        try:
            return _get(url, options)
        except _Retry as retry:
            if attempt == options.retries:
                raise retry.rejected from None
            time.sleep(options.backoff * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _get(url: str, options: FetchOptions) -> bytes:
    """One attempt; final failures raise Rejected, passing ones raise _Retry."""
    request = Request(url, headers={"User-Agent": options.user_agent})
    limit = options.max_download_bytes
    try:
        with urlopen(request, timeout=options.timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise Rejected("too_large", f"Content-Length {declared} is over {limit} bytes")
            return _read_capped(response, limit)
    except HTTPError as error:
        raise _http_failure(error.code, error.reason) from None
    except TimeoutError:
        raise _Retry(Rejected("timeout", f"no answer within {options.timeout} s")) from None
    except URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _Retry(Rejected("timeout", f"no answer within {options.timeout} s")) from None
        raise _Retry(Rejected("fetch_error", f"URLError: {error.reason}")) from None
    except (HTTPException, OSError) as error:
        raise _Retry(Rejected("fetch_error", f"{type(error).__name__}: {error}")) from None


def _read_capped(response: BinaryIO, limit: int) -> bytes:
    """The body in 64 kB reads, so a lying or absent Content-Length cannot make us hold more than ``limit``."""
    chunks, total = [], 0
    while chunk := response.read(1 << 16):
        total += len(chunk)
        if total > limit:
            raise Rejected("too_large", f"the answer is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _http_failure(status: int, reason: object) -> Exception:
    if status in GONE_STATUS:
        return Rejected("not_found", f"HTTP {status}")
    rejected = Rejected("fetch_error", f"HTTP {status} {reason}")
    return _Retry(rejected) if status in RETRYABLE_STATUS else rejected
