"""What the two HTML reports share: jinja2 templates from ``weaklabel/templates`` and images as data URIs.

Templates autoescape, so a label name, an id or a path shows as text whatever it holds. Images are
embedded in the page (PNG plots, JPEG thumbnails) so that each ``report.html`` stands alone.
"""

from __future__ import annotations

import base64
import io
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image


def format_metric(value: Any) -> str:
    """A metric for a table cell: "—" when missing, 4 decimals below 10, thousands with one decimal above."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


@cache  # built on first use, then shared: the vocab report is written on every `weaklabel vocab` run
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("weaklabel", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["metric"] = format_metric
    return env


def render(template_name: str, **context: Any) -> str:
    """The page ``template_name`` (a file in ``weaklabel/templates``) rendered with ``context``."""
    return environment().get_template(template_name).render(**context)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def figure_data_uri(figure: Figure) -> str:
    """A matplotlib figure, laid out tight, as a PNG data URI."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return png_data_uri(buffer.getvalue())


def jpeg_data_uri(image: Image.Image, quality: int = 85) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
