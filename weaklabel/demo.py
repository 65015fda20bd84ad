"""``weaklabel demo``: generated listings and images through every stage, on a CPU, in minutes.

The demo writes ``DIR/data`` (2,000 generated listings with 64 px images, see
:mod:`weaklabel.synthetic`) and ``DIR/pipeline.toml`` (:data:`DEMO_TOML`, also shipped as
``examples/pipeline.toml``), runs that pipeline and prints a summary. Run again, it skips every
stage that is up to date; edit ``DIR/pipeline.toml`` and ``weaklabel run`` it to try settings. A
pipeline file edited since the demo wrote it is kept, and the demo runs it as it is.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from .pipeline import load_pipeline, run_pipeline, summarize

DEMO_LISTINGS = 2000
WRITTEN = ".pipeline.toml.sha256"  # what the demo last wrote to pipeline.toml: other content is the user's edit
DEMO_IMAGE_SIZE = 64
DEMO_TOML = """\
# The pipeline `weaklabel demo` runs: 2,000 generated listings with 64 px photos through every
# stage on a CPU in a few minutes. `weaklabel demo --out DIR` writes this file to DIR/pipeline.toml,
# next to the generated data in DIR/data; edit that copy and run it again with
#     weaklabel run DIR/pipeline.toml
# (stages whose settings and inputs did not change are skipped). To run this very file, first
# generate its data next to it: weaklabel example-data --out examples/data
# Every key is documented in the README ("Running the whole pipeline"); a key left out takes its
# default. Paths are relative to this file.

out = "."                              # stage folders vocab/ labeled/ shards/ train/ eval/ audit/ go here

[listings]                             # the generated dump (see `weaklabel example-data`)
paths = ["data/listings.csv"]
text = ["title", "description:0.3"]    # free text: 1- to 3-grams are candidate terms; :W is a weight
tags = ["tags:0.5"]
category = ["category_path:0.5"]

[vocab]
min_label_support = 10                 # support a term group needs to become a label on its own

[assign]
workers = 1                            # one input file: label it in this process, no Dask cluster

[shards]
images_root = "data"                   # image paths in listings.csv are relative to data/
size = 64                              # shorter image side in the shards
splits = "train=0.8,val=0.1,test=0.1"
carry = ["true_type"]                  # the generator's ground truth, carried for evaluation only
workers = 2

[train]
model = "resnet10t"                    # a small timm ResNet, random init: nothing is downloaded
image_size = 64
embed_dim = 128
batch_size = 32
steps = 300                            # the training budget: 300 x 32 images, about 6 epochs
lr = 0.002
eval_every = 100                       # validation loss and mAP every 100 steps

[eval]
split = "test"                         # queries: the test split's images, searched among themselves
relevance = ["labels", "true_type"]    # relevant = shares a weak label; = has the same true type

[audit]                                # after eval: which labels the images show, which pairs are wrong
apply = false                          # true: train a second round without them and compare (stage round2)
"""


def run_demo(out: str | Path = "demo", *, progress: bool = True,
             echo: Callable[[str], None] = print) -> list[str]:
    """Generate the example data in ``out/data`` (unless there), write ``out/pipeline.toml``, run it;
    return the summary lines (also echoed, with the wall time)."""
    from .synthetic import generate_listings

    started = time.perf_counter()
    out = Path(out)
    data = out / "data"
    if (data / "listings.csv").is_file():
        echo(f"data: using {data} (delete it to generate it again)")
    else:
        generate_listings(DEMO_LISTINGS, data, seed=0, image_size=DEMO_IMAGE_SIZE, progress=progress)
        echo(f"data: generated {DEMO_LISTINGS} listings and their {DEMO_IMAGE_SIZE} px images in {data} "
             f"({time.perf_counter() - started:.1f} s)")
    path = write_demo_pipeline(out, echo)
    pipeline = load_pipeline(path)
    run_pipeline(pipeline, progress=progress, echo=echo)
    lines = summarize(pipeline)
    echo("")
    for line in lines:
        echo(line)
    echo(f"demo finished in {time.perf_counter() - started:.0f} s; change {path} and run "
         f"'weaklabel run {path}' to try other settings")
    return lines


def write_demo_pipeline(out: Path, echo: Callable[[str], None] = print) -> Path:
    """``out/pipeline.toml``: :data:`DEMO_TOML` written there, unless the file there was edited since
    a demo wrote it (then it is kept, and said so)."""
    path = out / "pipeline.toml"
    written = out / WRITTEN
    if path.is_file() and _sha256(path.read_bytes()) not in (_sha256(DEMO_TOML.encode()), _read(written)):
        echo(f"using {path} as you edited it (delete it to get the demo's settings back)")
        return path
    path.write_text(DEMO_TOML, encoding="utf-8")
    written.write_text(_sha256(DEMO_TOML.encode()), encoding="utf-8")
    echo(f"wrote {path}: the settings of this run")
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None
