"""Fetching image bytes (local, file://, http against a local server) and processing one image."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from weaklabel.datasets.fetch import FetchOptions, fetch
from weaklabel.datasets.images import ImageOptions, plan_geometry, process_image
from weaklabel.datasets.reasons import REASONS, Rejected


def jpeg(size=(40, 30), colour=(200, 30, 30), exif=None, quality=90) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, colour)
    image.save(buffer, "JPEG", quality=quality, **({"exif": exif} if exif is not None else {}))
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------
# a local HTTP server: 127.0.0.1 only, port chosen by the OS
# ------------------------------------------------------------------------------------------------

class Server:
    """Routes: path → (status, body, seconds to wait before answering, declared length or None)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, bytes, float, int | None]]] = {}
        self.hits: dict[str, int] = {}
        self.agents: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                server.agents.append(self.headers.get("User-Agent", ""))
                answers = server.routes.get(self.path, [(404, b"", 0.0, None)])
                status, body, delay, declared = answers[min(server.hits[self.path], len(answers)) - 1]
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(declared if declared is not None else len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test), as intended

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    server = Server()
    server.routes.update({
        "/good.jpg": [(200, jpeg(), 0.0, None)],
        "/slow.jpg": [(200, jpeg(), 1.0, None)],
        "/error.jpg": [(500, b"", 0.0, None)],
        "/flaky.jpg": [(503, b"", 0.0, None), (200, jpeg(), 0.0, None)],
        "/forbidden.jpg": [(403, b"", 0.0, None)],
        "/declared-big.jpg": [(200, b"x" * 100, 0.0, 5000)],
        "/streamed-big.jpg": [(200, b"x" * 5000, 0.0, None)],
    })
    yield server
    server.close()


def options(**kw) -> FetchOptions:
    return FetchOptions(**{"timeout": 0.3, "retries": 1, "backoff": 0.01, **kw})


def reason_of(source: str, opts: FetchOptions) -> str:
    with pytest.raises(Rejected) as caught:
        fetch(source, opts)
    return caught.value.reason


# ------------------------------------------------------------------------------------------------
# fetching
# ------------------------------------------------------------------------------------------------

def test_local_sources_relative_absolute_and_file_url(tmp_path: Path):
    data = jpeg()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(data)
    opts = options(images_root=str(tmp_path))
    assert fetch("images/a.jpg", opts) == data
    assert fetch(str(tmp_path / "images" / "a.jpg"), opts) == data
    outside_allowed = options(images_root="/nonexistent", allow_outside_root=True)
    assert fetch(str(tmp_path / "images" / "a.jpg"), outside_allowed) == data
    assert fetch((tmp_path / "images" / "a.jpg").as_uri(), opts) == data


def test_local_failures(tmp_path: Path):
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    opts = options(images_root=str(tmp_path), max_download_bytes=100)
    assert reason_of("", opts) == "missing_image"
    assert reason_of("nope.jpg", opts) == "not_found"
    assert reason_of("big.jpg", opts) == "too_large"
    assert reason_of(".", opts) == "fetch_error"  # a directory
    assert reason_of("ftp://example.invalid/a.jpg", opts) == "fetch_error"


def test_http_good_sends_user_agent(server: Server):
    assert fetch(server.url("/good.jpg"), options(user_agent="test-agent/1")) == jpeg()
    assert server.agents[-1] == "test-agent/1"


def test_http_slow_answer_times_out_after_retries(server: Server):
    start = time.perf_counter()
    assert reason_of(server.url("/slow.jpg"), options(timeout=0.2, retries=1)) == "timeout"
    assert server.hits["/slow.jpg"] == 2
    assert time.perf_counter() - start < 1.5


def test_http_404_is_final_500_is_retried(server: Server):
    assert reason_of(server.url("/missing.jpg"), options(retries=3)) == "not_found"
    assert server.hits["/missing.jpg"] == 1
    assert reason_of(server.url("/error.jpg"), options(retries=2)) == "fetch_error"
    assert server.hits["/error.jpg"] == 3
    assert reason_of(server.url("/forbidden.jpg"), options(retries=2)) == "fetch_error"
    assert server.hits["/forbidden.jpg"] == 1


def test_http_retry_recovers(server: Server):
    assert fetch(server.url("/flaky.jpg"), options(retries=1)) == jpeg()
    assert server.hits["/flaky.jpg"] == 2


def test_http_oversized_answers(server: Server):
    assert reason_of(server.url("/declared-big.jpg"), options(max_download_bytes=1000)) == "too_large"
    assert reason_of(server.url("/streamed-big.jpg"), options(max_download_bytes=1000)) == "too_large"


def test_unreachable_server_is_a_fetch_error():
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    assert reason_of(f"http://127.0.0.1:{port}/a.jpg", options(retries=0)) == "fetch_error"


def test_rejected_reasons_are_a_fixed_vocabulary():
    with pytest.raises(ValueError):
        Rejected("something_else")
    assert set(REASONS) == {"no_labels", "missing_image", "not_found", "fetch_error", "timeout", "too_large",
                            "decode_error", "too_small", "too_many_pixels", "invalid_source", "outside_root",
                            "too_large_output", "key_collision"}


# ------------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, size, expected", [
    ("keep_ratio", (80, 40), (64, 32)),    # shorter side to 32
    ("keep_ratio", (20, 10), (64, 32)),    # upscaled too, as img2dataset
    ("center_crop", (80, 40), (32, 32)),
    ("border", (80, 40), (32, 32)),
    ("none", (80, 40), (80, 40)),
])
def test_resize_modes(mode: str, size: tuple[int, int], expected: tuple[int, int]):
    out = process_image(jpeg(size), ImageOptions(size=32, resize_mode=mode))
    assert (out.width, out.height) == expected
    assert Image.open(io.BytesIO(out.data)).size == expected


def test_border_pads_with_white_and_center_crop_keeps_the_middle():
    image = Image.new("RGB", (80, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 40))  # left quarter red
    bordered = Image.open(io.BytesIO(process_image(png(image), ImageOptions(size=32, resize_mode="border")).data))
    assert min(bordered.getpixel((16, 1))) > 240  # padding band above the image
    assert bordered.getpixel((30, 16))[2] > 200  # the image itself
    cropped = Image.open(io.BytesIO(process_image(png(image), ImageOptions(size=32, resize_mode="center_crop")).data))
    assert cropped.getpixel((2, 16))[2] > 200  # the red quarter was cut away


def test_resize_only_if_bigger():
    small = ImageOptions(size=32, resize_only_if_bigger=True)
    out = process_image(jpeg((24, 16)), small)
    assert (out.width, out.height) == (24, 16) and out.passed_through
    out = process_image(jpeg((80, 40)), small)
    assert (out.width, out.height) == (64, 32)
    assert plan_geometry(30, 60, ImageOptions(size=32, resize_mode="border", resize_only_if_bigger=True)) is not None


def test_pass_through_keeps_the_original_bytes():
    data = jpeg((32, 48))  # shorter side already 32
    out = process_image(data, ImageOptions(size=32))
    assert out.passed_through and out.data == data
    source = png(Image.new("RGB", (32, 32), (1, 2, 3)))
    assert process_image(source, ImageOptions(size=32, image_format="png")).data == source
    converted = process_image(source, ImageOptions(size=32, image_format="jpg"))
    assert not converted.passed_through and Image.open(io.BytesIO(converted.data)).format == "JPEG"
    grey = io.BytesIO()
    Image.new("L", (32, 32), 128).save(grey, "JPEG")
    out = process_image(grey.getvalue(), ImageOptions(size=32))
    assert not out.passed_through and Image.open(io.BytesIO(out.data)).mode == "RGB"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # stored: red on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: red ends on top
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    out = process_image(buffer.getvalue(), ImageOptions(size=32, resize_mode="none"))
    decoded = Image.open(io.BytesIO(out.data))
    assert (out.width, out.height) == decoded.size == (20, 40)
    assert decoded.getpixel((10, 5))[0] > 200 and decoded.getpixel((10, 35))[2] > 200
    assert decoded.getexif().get(0x0112) is None
    resized = process_image(buffer.getvalue(), ImageOptions(size=32))
    assert (resized.width, resized.height) == (32, 64)


def test_transparency_is_flattened_on_white():
    image = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    out = process_image(png(image), ImageOptions(size=32, image_format="png"))
    assert Image.open(io.BytesIO(out.data)).convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_jpeg_draft_decodes_large_images_at_reduced_scale():
    out = process_image(jpeg((800, 600), quality=80), ImageOptions(size=64))
    assert (out.width, out.height) == (85, 64)


@pytest.mark.parametrize("data", [b"not an image at all", jpeg((64, 64))[:300]], ids=["garbage", "truncated"])
def test_corrupt_images_are_decode_errors(data: bytes):
    with pytest.raises(Rejected) as caught:
        process_image(data, ImageOptions(size=32))
    assert caught.value.reason == "decode_error"


def test_too_small_and_too_many_pixels():
    with pytest.raises(Rejected) as caught:
        process_image(jpeg((40, 20)), ImageOptions(size=32, min_size=24))
    assert caught.value.reason == "too_small"
    with pytest.raises(Rejected) as caught:
        process_image(jpeg((40, 40)), ImageOptions(size=32, max_pixels=1000))
    assert caught.value.reason == "too_many_pixels"


def test_decompression_bomb_is_rejected_before_decoding():
    bomb = png(Image.new("1", (10_000, 9_000)))  # 90 M pixels in a few kB, over Pillow's 89.5 M
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(Rejected) as caught:
        process_image(bomb, ImageOptions(size=32))
    assert caught.value.reason == "too_many_pixels"
    assert time.perf_counter() - start < 0.5


def test_image_options_are_validated():
    for bad in ({"resize_mode": "stretch"}, {"image_format": "gif"}, {"size": 0}, {"quality": 101}):
        with pytest.raises(ValueError):
            ImageOptions(**bad)
