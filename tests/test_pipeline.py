"""``weaklabel run``: the pipeline file, the stage runner, skipping, stage selection and failures.

The pipeline runs on the generated example catalogue (600 listings, 32 px) with a tiny training
budget (resnet10t at 32 px, 3 steps), through every stage including evaluation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import one_line_error

from weaklabel import __version__
from weaklabel.artifacts import MANIFEST
from weaklabel.cli import main
from weaklabel.demo import DEMO_TOML
from weaklabel.pipeline import (
    SECTIONS,
    STAGES,
    PipelineError,
    StageFailed,
    load_pipeline,
    parse_pipeline,
    run_pipeline,
    section_keys,
    select_stages,
    summarize,
)
from weaklabel.stage import get as get_stage

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_toml(example_data: Path, folder: Path, *, model: str = "resnet10t", relevance: str = '"labels"',
              apply: bool = False) -> Path:
    """A pipeline file in ``folder`` whose listings path is relative to it, as a user would write one."""
    folder.mkdir(parents=True, exist_ok=True)
    data = os.path.relpath(example_data, folder)
    path = folder / "pipeline.toml"
    path.write_text(f"""
out = "out"
[listings]
paths = ["{data}/listings.csv"]
text = ["title", "description:0.3"]
tags = ["tags:0.5"]
category = ["category_path:0.5"]
[vocab]
min_label_support = 5
[assign]
workers = 1
[shards]
images_root = "{data}"
size = 32
splits = {{train = 0.8, val = 0.1, test = 0.1}}
carry = ["true_type"]
max_samples = 200
workers = 1
[train]
model = "{model}"
image_size = 32
embed_dim = 16
batch_size = 16
steps = 3
workers = 0
shuffle_buffer = 20
[eval]
split = "test"
relevance = [{relevance}]
efficiency = false
[audit]
checkpoint = "last"
apply = {str(apply).lower()}
""")
    return path


def statuses(results) -> dict[str, str]:
    return {name: result.status for name, result in results.items()}


@pytest.fixture(scope="module")
def first_run(example_data: Path, tmp_path_factory):
    """The pipeline run once through every stage: (pipeline file, results, echoed lines)."""
    path = tiny_toml(example_data, tmp_path_factory.mktemp("pipeline"), relevance='"labels", "true_type"', apply=True)
    lines: list[str] = []
    results = run_pipeline(load_pipeline(path), progress=False, echo=lines.append)
    return path, results, lines


def test_first_run_runs_every_stage_and_writes_every_artifact(first_run):
    path, results, lines = first_run
    out = path.parent / "out"
    assert statuses(results) == dict.fromkeys(STAGES, "ran")
    assert [line.split(":")[0] for line in lines] == [stage for stage in STAGES for _ in (0, 1)]
    assert "vocab: running (not run yet)" in lines
    for stage in STAGES:
        manifest = json.loads((out / get_stage(stage).folder / MANIFEST).read_text())
        assert manifest["stage"] == stage and manifest["pipeline"]["config"]
        assert not (out / get_stage(stage).folder / ".pipeline-pending.json").exists()
    assert (out / "vocab" / "labels.parquet").is_file() and list((out / "labeled" / "parts").glob("part-*.parquet"))
    info = json.loads((out / "shards" / "_info.json").read_text())
    assert set(info["splits"]) == {"train", "val", "test"}
    assert json.loads((out / "train" / MANIFEST).read_text())["counts"]["steps"] == 3
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test"
    assert set(metrics["models"]["train-last"]["retrieval"]) == {"labels", "true_type"}
    assert (out / "audit" / "labels_audit.parquet").is_file() and (out / "audit" / "report.html").is_file()
    round2 = json.loads((out / "round2" / MANIFEST).read_text())
    assert set(round2["outputs"]) == {"round1", "round2"} and (out / "round2" / "train" / "last.pt").is_file()
    assert json.loads((out / "round2" / "train" / "config.json").read_text())["relabel"] == str(out / "audit")
    assert any(line.startswith("round2: done") and "round 1 -> round 2: R@1" in line for line in lines)
    # the listings path is relative to the pipeline file; outside its folder, it is recorded resolved
    vocab_inputs = json.loads((out / "vocab" / MANIFEST).read_text())["pipeline"]["inputs"]
    assert vocab_inputs[0]["path"].endswith("listings.csv") and Path(vocab_inputs[0]["path"]).is_absolute()


def test_a_second_run_skips_every_stage(first_run, capsys):
    path, _, _ = first_run
    assert main(["run", str(path), "-q"]) == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert f"{stage}: skipped (up to date)" in out
    assert "vocab:  " in out and " labels (head " in out and "eval:   relevance 'true_type': R@1" in out
    assert "report.html" in out and "shards/gallery.html" in out
    eval_report = (path.parent / "out" / "eval" / "report.html").read_text(encoding="utf-8")
    assert 'href="../shards/gallery.html"' in eval_report


def test_a_project_folder_copied_elsewhere_skips_every_stage(example_data: Path, tmp_path: Path):
    """The records hold the paths inside the project relative to its pipeline file (and files by content)."""
    project = tmp_path / "project"
    shutil.copytree(example_data, project / "data")
    run_pipeline(load_pipeline(tiny_toml(project / "data", project)), progress=False, echo=lambda line: None)
    copy = tmp_path / "elsewhere" / "copied"
    shutil.copytree(project, copy)
    results = run_pipeline(load_pipeline(copy / "pipeline.toml"), progress=False, echo=lambda line: None)
    assert statuses(results) == dict.fromkeys(STAGES, "skipped")
    record = json.loads((copy / "out" / "shards" / MANIFEST).read_text())["pipeline"]
    assert record["config"]["shards"]["images_root"] == "data"
    assert [entry["path"] for entry in record["inputs"]] == ["out/labeled"]


def test_force_train_reruns_train_and_eval_only(first_run):
    path, _, _ = first_run
    before = (path.parent / "out" / "train" / "last.pt").stat().st_mtime_ns
    lines: list[str] = []
    results = run_pipeline(load_pipeline(path), force=["train"], progress=False, echo=lines.append)
    assert statuses(results) == {"vocab": "skipped", "assign": "skipped", "shards": "skipped", "train": "ran",
                                 "eval": "ran", "audit": "ran", "round2": "ran"}
    assert "train: running (forced)" in lines
    assert results["eval"].reason.startswith("inputs changed: ") and "train" in results["eval"].reason
    assert (path.parent / "out" / "train" / "last.pt").stat().st_mtime_ns != before


def test_a_changed_setting_reruns_its_stage_and_the_later_ones(first_run):
    path, _, _ = first_run
    text = path.read_text().replace('relevance = ["labels", "true_type"]', 'relevance = ["true_type"]')
    # how a stage runs (its workers) is not what it makes: no rerun for that
    path.write_text(text.replace("max_samples = 200\nworkers = 1", "max_samples = 200\nworkers = 2"))
    results = run_pipeline(load_pipeline(path), progress=False, echo=lambda line: None)
    assert statuses(results) == {"vocab": "skipped", "assign": "skipped", "shards": "skipped", "train": "skipped",
                                 "eval": "ran", "audit": "skipped", "round2": "ran"}
    assert results["eval"].reason == "settings changed: [eval] relevance"
    assert results["round2"].reason.startswith("settings changed: [eval] relevance")  # it evaluates as eval does
    metrics = json.loads((path.parent / "out" / "eval" / "metrics.json").read_text())
    assert set(metrics["models"]["train-last"]["retrieval"]) == {"true_type"}


def test_a_stage_made_by_another_weaklabel_version_reruns(first_run):
    path, _, _ = first_run
    manifest_path = path.parent / "out" / "eval" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["pipeline"]["weaklabel_version"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    results = run_pipeline(load_pipeline(path), progress=False, echo=lambda line: None)
    assert statuses(results)["eval"] == "ran" and statuses(results)["train"] == "skipped"
    assert results["eval"].reason == f"made by weaklabel 0.0.1 (this is {__version__})"
    assert json.loads(manifest_path.read_text())["pipeline"]["weaklabel_version"] == __version__


def test_from_and_until_select_stages(first_run):
    path, _, _ = first_run
    pipeline = load_pipeline(path)
    assert statuses(run_pipeline(pipeline, until="assign", progress=False, echo=lambda line: None)) == {
        "vocab": "skipped", "assign": "skipped"}
    heads = list(dict.fromkeys(line.split(":")[0] for line in summarize(pipeline, until="assign")))
    assert heads == ["vocab", "assign", "reports"]  # later stages were not run: their older results are not shown
    assert {"shards", "train"} <= {line.split(":")[0] for line in summarize(pipeline)}
    assert statuses(run_pipeline(pipeline, start="eval", progress=False, echo=lambda line: None)) == {
        "eval": "ran", "audit": "skipped", "round2": "ran"}


def test_round2_runs_only_when_asked_and_the_audit_needs_a_held_out_split(example_data: Path, tmp_path: Path):
    from weaklabel.audit.round2 import ROUND2
    from weaklabel.audit.stage import AUDIT

    pipeline = load_pipeline(tiny_toml(example_data, tmp_path))
    assert ROUND2.not_asked(pipeline.sections) == "[audit] apply = false"
    path = tiny_toml(example_data, tmp_path, apply=True)
    text = path.read_text().replace("splits = {train = 0.8, val = 0.1, test = 0.1}", 'splits = "train=1"')
    path.write_text(text.replace('split = "test"', 'split = "train"'))
    sections = load_pipeline(path).sections
    assert AUDIT.not_asked(sections) == ROUND2.not_asked(sections) == (
        "[shards] splits has no split besides train to judge the labels on")


def test_stage_selection_errors():
    with pytest.raises(PipelineError, match="--force trian: unknown stage; stages are vocab, assign"):
        select_stages(["trian"], None, None)
    with pytest.raises(PipelineError, match="--from eval comes after --until train"):
        select_stages([], "eval", "train")
    with pytest.raises(PipelineError, match="--force vocab: that stage is not among those selected"):
        select_stages(["vocab"], "train", None)
    assert select_stages(["eval"], "train", None) == (3, 6, {"train", "eval"})


def test_from_needs_the_earlier_artifacts(example_data: Path, tmp_path: Path):
    pipeline = load_pipeline(tiny_toml(example_data, tmp_path))
    with pytest.raises(PipelineError, match=r"--from train: stage 'vocab' has not finished"):
        run_pipeline(pipeline, start="train", progress=False, echo=lambda line: None)


def test_a_failing_stage_is_named_and_earlier_artifacts_stay(example_data: Path, tmp_path: Path, capsys):
    path = tiny_toml(example_data, tmp_path, model="no_such_model")
    with pytest.raises(StageFailed) as failure:
        run_pipeline(load_pipeline(path), progress=False, echo=lambda line: None)
    assert failure.value.stage == "train"
    assert str(failure.value).startswith("stage 'train' failed: ") and "no_such_model" in str(failure.value)
    assert "finished artifacts are kept: vocab in " in str(failure.value)
    out = tmp_path / "out"
    for folder in ("vocab", "labeled", "shards"):
        assert (out / folder / MANIFEST).is_file()
    assert not (out / "train" / MANIFEST).exists() and not (out / "eval").exists()
    # the CLI says the same and exits 1; the fixed file reuses the finished stages
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "-q", "--until", "train"])
    captured = capsys.readouterr()
    assert exit_.value.code == 1 and "error: stage 'train' failed" in captured.err
    assert "Traceback" not in captured.err  # a bad setting needs its message, not a stack
    assert ("vocab: skipped (up to date)" in captured.out
            and "train: running (its last run did not finish)" in captured.out)
    path.write_text(path.read_text().replace("no_such_model", "resnet10t"))
    results = run_pipeline(load_pipeline(path), until="train", progress=False, echo=lambda line: None)
    assert statuses(results) == {"vocab": "skipped", "assign": "skipped", "shards": "skipped", "train": "ran"}


def test_an_unexpected_error_in_a_stage_shows_its_traceback(example_data: Path, tmp_path: Path, capsys,
                                                            monkeypatch):
    import dataclasses

    from weaklabel.labeling import stages

    def broken(inputs, out, options, *, progress, resume):
        raise KeyError("a bug")

    monkeypatch.setattr(stages, "VOCAB", dataclasses.replace(stages.VOCAB, run=broken))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tiny_toml(example_data, tmp_path)), "-q"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" in err and "in broken" in err
    assert err.rstrip().endswith("error: stage 'vocab' failed: KeyError: 'a bug'\nfinished artifacts are kept: none")


def test_an_unknown_key_names_the_valid_keys(tmp_path: Path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[listings]\npaths = ["x.csv"]\ntext = ["title"]\n[vocab]\nmin_suport = 3\n')
    with pytest.raises(PipelineError) as error:
        load_pipeline(path)
    message = str(error.value)
    assert message.startswith(f"{path}: [vocab]: unknown key 'min_suport' (did you mean 'min_support'?); valid keys: ")
    assert "ngram_range, stopwords, min_support, max_df" in message
    assert main(["run", str(path)]) == 1
    assert "error: " in capsys.readouterr().err


@pytest.mark.parametrize(("text", "expected"), [
    ('[trian]\nsteps = 1', "top level: unknown key 'trian' (did you mean 'train'?); valid keys: out"),
    ('[train]\nsteps = "ten"', "[train]: steps = 'ten' should be int | None"),
    ('[train]\nloss = "hinge"', "[train] loss must be one of"),
    ('[train]\ntasks = ["true_type:softmax"]', "[train] tasks: 'true_type:softmax' needs its column in [shards] carry"),
    ('[eval]\nsplit = "holdout"', "[eval] split = 'holdout' is not a split of [shards] splits (train, val, test)"),
    ('[eval]\ncheckpoint = "first"', "[eval] checkpoint must be one of last, best"),
    ("[shards]\nsplits = 'train=0.5'", "fractions"),
    ("vocab = 3", "[vocab] must be a table"),
    ("[vocab\n", "is not valid TOML"),
])
def test_bad_settings_are_clear_errors(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "p.toml"
    path.write_text(text + '\n[listings]\npaths = ["x.csv"]\ntext = ["title"]\n')
    with pytest.raises(PipelineError, match=re.escape(expected)):
        load_pipeline(path)


def test_defaults_and_paths():
    pipeline = parse_pipeline({"listings": {"paths": ["dumps/*.csv"], "text": ["title"]},
                               "shards": {"images_root": "/abs/images"}, "vocab": {"max_df": 1}}, base="/base")
    assert pipeline.out == Path("/base") and pipeline.folder("assign") == Path("/base/labeled")
    assert pipeline["listings"]["paths"] == ["/base/dumps/*.csv"] and pipeline["shards"]["images_root"] == "/abs/images"
    assert pipeline["vocab"]["max_df"] == 1.0 and isinstance(pipeline["vocab"]["max_df"], float)
    assert pipeline["vocab"]["min_label_support"] == 10 and pipeline["train"]["model"] == "efficientnet_b0"
    assert pipeline["eval"] == {"checkpoint": "last", **{k: d for k, (d, _) in section_keys("eval").items()}}
    with pytest.raises(PipelineError, match=r"\[listings\]: paths: name at least one"):
        parse_pipeline({"listings": {"text": ["title"]}})


def test_the_examples_are_valid_and_the_first_is_the_demo():
    assert (ROOT / "examples" / "pipeline.toml").read_text() == DEMO_TOML
    demo = load_pipeline(ROOT / "examples" / "pipeline.toml")
    assert demo["train"]["model"] == "resnet10t" and demo["eval"]["relevance"] == ["labels", "true_type"]
    fashion = load_pipeline(ROOT / "examples" / "fashion.toml")
    assert [f.column for f in fashion.roles().fields] == ["title"]
    assert fashion["shards"]["carry"] == ["articleType"] and "articleType" in fashion["eval"]["relevance"]


def test_the_demo_keeps_an_edited_pipeline_file(tmp_path: Path, monkeypatch):
    from weaklabel import demo

    lines: list[str] = []
    path = demo.write_demo_pipeline(tmp_path, lines.append)
    assert path.read_text() == DEMO_TOML and lines == [f"wrote {path}: the settings of this run"]
    edited = DEMO_TOML.replace("steps = 300", "steps = 50")
    path.write_text(edited)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "listings.csv").write_text("id\n")  # the demo's data is there: not generated again
    ran = []
    monkeypatch.setattr(demo, "run_pipeline", lambda pipeline, **kwargs: ran.append(pipeline))
    monkeypatch.setattr(demo, "summarize", lambda pipeline: [])
    demo.run_demo(tmp_path, progress=False, echo=lines.append)
    assert path.read_text() == edited and ran[0]["train"]["steps"] == 50
    assert f"using {path} as you edited it (delete it to get the demo's settings back)" in lines
    # a file that an earlier demo wrote (another version's settings) is not an edit: it is replaced
    (tmp_path / demo.WRITTEN).write_text(hashlib.sha256(edited.encode()).hexdigest())
    demo.write_demo_pipeline(tmp_path, lines.append)
    assert path.read_text() == DEMO_TOML


def readme_tables() -> dict[str, dict[str, str]]:
    """``{section: {key: default cell}}`` from the tables of the README's pipeline section."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Running the whole pipeline")
    end = readme.find("\n## ", start + 1)
    tables = {}
    for block in re.split(r"^#### ", readme[start : end if end > 0 else None], flags=re.MULTILINE)[1:]:
        heading = re.match(r"`\[(\w+)\]`|(Top level)", block)
        if heading:
            key_defaults = re.findall(r"^\| `(\w+)` \| (.+?) \|", block, flags=re.MULTILINE)
            tables[heading.group(1) or "top level"] = dict(key_defaults)
    return tables


def toml_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace(__version__, "VERSION") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def test_the_readme_documents_every_key_with_its_default():
    tables = readme_tables()
    assert set(tables) == {"top level", *SECTIONS}
    assert tables["top level"] == {"out": '`"."`'}
    for section in SECTIONS:
        expected = {key: "none" if default is None else f"`{toml_value(default)}`"
                    for key, (default, _) in section_keys(section).items()}
        assert tables[section] == expected, section


def test_the_summary_says_n_a_for_undefined_metrics(tmp_path: Path):
    from weaklabel.eval.stage import eval_summary

    undefined = dict.fromkeys(("recall@1", "recall@10", "map@10"))
    metrics = {"models": {"run": {"retrieval": {"true_type": {
        "overall": {**undefined, "queries": 0, "queries_without_relevant": 7},
        "tiers": {"tail": {**undefined, "queries": 0, "queries_without_relevant": 2}}}}}}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert eval_summary(tmp_path, {}) == [("relevance 'true_type': R@1 n/a, R@10 n/a, mAP@10 n/a over 0 of 7 queries "
                                           "(7 without a relevant item)")]
    metrics["models"]["other"] = metrics["models"]["run"]
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert eval_summary(tmp_path, {})[1].startswith("other, relevance 'true_type': R@1 n/a")


@pytest.mark.parametrize("logged, shown", [(4, [10, 20, 30, 40]), (30, [10, 70, 130, 180, 240, 300])])
def test_the_training_curve_shows_the_first_and_last_logged_steps(tmp_path: Path, logged: int, shown: list[int]):
    from weaklabel.training.stage import train_summary

    rows = [{"kind": "train", "step": 10 * (i + 1), "loss": 1.0 / (i + 1)} for i in range(logged)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    manifest = {"config": {"model": "resnet10t", "image_size": 32}, "outputs": {"metrics": {"step": 10 * logged}}}
    line = train_summary(tmp_path, manifest)[0]
    assert [int(part.split(":")[0]) for part in line.split("loss by step ")[1].split(", ")] == shown


def test_every_stage_has_the_one_shape():
    for name in STAGES:
        stage = get_stage(name)
        assert stage.name == name and stage.outputs and all(up in STAGES[: STAGES.index(name)] for up in stage.upstream)
        options = stage.options()
        assert set(stage.execution) <= set(options)
        stage.check({key: default for key, (default, _) in options.items()})  # the defaults are valid


def test_a_bad_setting_of_a_late_stage_stops_the_run_before_the_first(tmp_path: Path, capsys):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text('[listings]\npaths = ["listings.csv"]\ntext = ["title"]\n[shards]\nsize = -4\n')
    error = one_line_error(["run", str(pipeline)], capsys)
    assert "[shards] size must be >= 1, got -4" in error
    assert not (tmp_path / "vocab").exists()
