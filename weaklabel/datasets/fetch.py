"""Getting an image's original bytes: a local path, a ``file://`` URL or an http(s) URL.

The fetcher of the img2dataset split (reader → fetcher → resizer → writer): it only returns
bytes or raises :class:`~weaklabel.datasets.reasons.Rejected`; it never decodes, and no source,
however hostile, makes it raise anything else, hang or hold more than ``max_download_bytes``.

Local files (relative paths start at ``images_root``; absolute paths and ``file://`` URLs name
one directly) are read only when they are regular files (never a FIFO or a device, which could
block or never end) and, unless ``allow_outside_root``, only when their real path (symlinks and
``..`` resolved) lies inside the real ``images_root``. Remote fetches are bounded in time (the
socket ``timeout`` for each step, and :data:`DEADLINE_TIMEOUTS` times it for a whole exchange, so
a server trickling bytes cannot hold a fetch), size (``max_download_bytes``, checked against
Content-Length and while reading; local files too) and effort (``retries`` with exponential
backoff, only for failures that may pass: timeouts, connection errors, 408/429 and 5xx answers;
an exchange that outlives its deadline is not retried). Concurrency is the caller's thread pool.
"""

from __future__ import annotations

import io
import os
import stat
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from http.client import HTTPConnection, HTTPException, HTTPResponse, HTTPSConnection, InvalidURL
from typing import Any, BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPHandler, HTTPSHandler, Request, build_opener, url2pathname

from .. import __version__
from .reasons import Rejected

DEFAULT_USER_AGENT = f"weaklabel/{__version__} (image fetcher for training shards)"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
GONE_STATUS = frozenset({404, 410})
DEADLINE_TIMEOUTS = 3  # a whole exchange (answer and body) must end within this many --timeout
READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchOptions:
    """Where relative paths start, whether paths may leave it, and how hard to try for remote images."""

    images_root: str = "."
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    max_download_bytes: int = 20_000_000
    user_agent: str = DEFAULT_USER_AGENT
    allow_outside_root: bool = False

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {self.backoff}")
        if self.max_download_bytes < 1:
            raise ValueError(f"max_download_bytes must be >= 1, got {self.max_download_bytes}")

    @cached_property
    def real_root(self) -> str:
        """``images_root`` with symlinks resolved, computed once: what local paths must lie inside."""
        return os.path.realpath(self.images_root)


def fetch(source: str, options: FetchOptions) -> bytes:
    """The bytes of ``source``: a path relative to ``images_root``, an absolute path, or a URL."""
    if not source:
        raise Rejected("missing_image")
    if "://" not in source:
        return _read_file(os.path.join(options.real_root, source), options)
    try:
        parts = urlsplit(source)
    except ValueError as error:
        raise Rejected("invalid_source", f"malformed URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_url(source, options)
    if scheme == "file":
        return _read_file(url2pathname(parts.path), options)
    raise Rejected("fetch_error", f"unsupported URL scheme {scheme!r}")


# ------------------------------------------------------------------------------------------------
# local files
# ------------------------------------------------------------------------------------------------

def _read_file(path: str, options: FetchOptions) -> bytes:
    """An absolute path's bytes, once it is known to be a regular file (inside the root unless allowed)."""
    if "\0" in path:
        raise Rejected("invalid_source", "the path holds a NUL byte")
    try:
        real, info = _resolve(path)
        if not options.allow_outside_root and not _inside(real, options.real_root):
            raise Rejected("outside_root", f"{path} is outside the images root {options.real_root}")
        _check_regular(info, path)  # before opening: opening a FIFO blocks, opening a device may act
        descriptor = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(descriptor, "rb", buffering=0) as handle:
            info = os.fstat(descriptor)
            _check_regular(info, path)  # the path may have been swapped since
            if info.st_size > options.max_download_bytes:
                raise Rejected("too_large", f"{path} has {info.st_size} bytes, over {options.max_download_bytes}")
            return _read_capped(handle, options.max_download_bytes)
    except FileNotFoundError:
        raise Rejected("not_found", path) from None
    except OSError as error:
        raise Rejected("fetch_error", f"{type(error).__name__}: {error}") from None


def _resolve(path: str) -> tuple[str, os.stat_result]:
    """The real path of an absolute ``path`` (``..`` and symlinks resolved) and the stat of what it
    names. One lstat when the file itself is no symlink: its folder's real path is cached, as
    ``realpath`` per image would cost more than reading a small image."""
    info = os.lstat(path)
    folder, name = os.path.split(path)
    if stat.S_ISLNK(info.st_mode) or name in ("", ".", ".."):
        real = os.path.realpath(path)
        return real, os.stat(real)
    return os.path.join(_real_folder(folder), name), info


@lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _check_regular(info: os.stat_result, path: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise Rejected("fetch_error", f"{path} is not a regular file")


def _read_capped(handle: BinaryIO, limit: int) -> bytes:
    """The content in 64 kB reads, so a lying or absent size cannot make us hold more than ``limit``."""
    chunks, total = [], 0
    while chunk := handle.read(READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise Rejected("too_large", f"the source is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------------
# URLs
# ------------------------------------------------------------------------------------------------

class _Retry(Exception):
    """A failure worth another attempt; carries the rejection to raise once attempts run out."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(str(rejected))
        self.rejected = rejected


class _PastDeadline(TimeoutError):
    """The exchange outlived its deadline (a server trickling bytes); not worth another attempt."""


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
    limit = options.max_download_bytes
    try:
        request = Request(url, headers={"User-Agent": options.user_agent})
        with _OPENER.open(request, timeout=options.timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise Rejected("too_large", f"Content-Length {declared} is over {limit} bytes")
            return _read_capped(response, limit)
    except HTTPError as error:
        raise _http_failure(error.code, error.reason) from None
    except _PastDeadline:
        raise Rejected("timeout", f"the exchange took over {DEADLINE_TIMEOUTS * options.timeout:g} s") from None
    except TimeoutError:
        raise _Retry(Rejected("timeout", f"no answer within {options.timeout} s")) from None
    except URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _Retry(Rejected("timeout", f"no answer within {options.timeout} s")) from None
        raise _Retry(Rejected("fetch_error", f"URLError: {error.reason}")) from None
    except (InvalidURL, ValueError) as error:  # a URL http.client or urllib refuses (control characters, bad host)
        raise Rejected("invalid_source", f"{type(error).__name__}: {error}") from None
    except (HTTPException, OSError) as error:
        raise _Retry(Rejected("fetch_error", f"{type(error).__name__}: {error}")) from None


def _http_failure(status: int, reason: object) -> Exception:
    if status in GONE_STATUS:
        return Rejected("not_found", f"HTTP {status}")
    rejected = Rejected("fetch_error", f"HTTP {status} {reason}")
    return _Retry(rejected) if status in RETRYABLE_STATUS else rejected


class _DeadlineReader(io.RawIOBase):
    """A response's socket reads, each waiting at most ``timeout`` and none past ``deadline``."""

    def __init__(self, stream: BinaryIO, sock: Any, deadline: float, timeout: float) -> None:
        super().__init__()
        self.stream, self.sock, self.deadline, self.timeout = stream, sock, deadline, timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _PastDeadline()
        self.sock.settimeout(min(self.timeout, left))
        try:
            return self.stream.readinto1(buffer)
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                raise _PastDeadline() from None
            raise

    def close(self) -> None:
        self.stream.close()
        super().close()


class _DeadlineResponse(HTTPResponse):
    def __init__(self, sock: Any, *args: Any, deadline: float, timeout: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp, sock, deadline, timeout))


class _DeadlineMixin:
    """A connection whose answer (status, headers and body) must arrive by one deadline."""

    timeout: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deadline = time.monotonic() + DEADLINE_TIMEOUTS * self.timeout
        self.response_class = partial(_DeadlineResponse, deadline=deadline, timeout=self.timeout)


class _DeadlineHTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _DeadlineHTTPHandler(HTTPHandler):
    def http_open(self, req: Request) -> Any:
        return self.do_open(_DeadlineHTTPConnection, req)


class _DeadlineHTTPSHandler(HTTPSHandler):
    def https_open(self, req: Request) -> Any:
        return self.do_open(_DeadlineHTTPSConnection, req, context=self._context)


_OPENER = build_opener(_DeadlineHTTPHandler, _DeadlineHTTPSHandler)
