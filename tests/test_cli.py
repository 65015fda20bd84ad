"""The command line repeats no default: unset options keep the API's, and --help shows the API's."""

from __future__ import annotations

import argparse

import pytest

from weaklabel.cli import build_parser
from weaklabel.stage import STAGES
from weaklabel.stage import get as get_stage

COMMANDS = {"vocab": ["vocab", "listings.csv", "--out", "v", "--text", "title"],
            "assign": ["assign", "listings.csv", "--vocab", "v", "--out", "l"],
            "shards": ["shards", "l", "--out", "s"], "train": ["train", "s", "--out", "t"],
            "eval": ["eval", "t/last.pt", "--shards", "s", "--out", "e"],
            "audit": ["audit", "t/last.pt", "--shards", "s", "--out", "a"]}
COMMANDED = [stage for stage in STAGES if stage in COMMANDS]  # round2 is a pipeline stage: train --relabel, then eval


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    actions = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return actions.choices[name]


@pytest.mark.parametrize("stage", COMMANDED)
def test_unset_options_are_left_to_the_api(stage: str):
    options = get_stage(stage).options()
    given = {key for key in vars(build_parser().parse_args(COMMANDS[stage])) if key in options}
    assert given <= {"checkpoint"}, f"the command line sets {sorted(given)} itself"


@pytest.mark.parametrize("stage", COMMANDED)
def test_help_shows_the_apis_defaults(stage: str):
    help_text = " ".join(subparser(stage).format_help().split())
    options = get_stage(stage).options()
    shown = [action for action in subparser(stage)._actions
             if action.dest in options and "%(default)" in (action.help or "")]
    assert shown, "no option shows its default"
    for action in shown:
        default = options[action.dest][0]
        if isinstance(default, (int, float, str)) and not isinstance(default, bool) and default != "":
            text = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"(default: {text})" in help_text or f"default: {text})" in help_text, (action.dest, text)


def test_an_error_starts_a_line_of_its_own_after_a_progress_bar(tmp_path, capsys):
    from weaklabel.cli import main

    (tmp_path / "a.csv").write_text("id,title\n1,mug\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,name\n2,cup\n", encoding="utf-8")
    assert main(["vocab", str(tmp_path), "--text", "title", "--image", "", "--out", str(tmp_path / "v")]) == 1
    err = capsys.readouterr().err
    assert "reading listings" in err and "\nerror: " in err and err.count("error: ") == 1
    assert err.endswith("\n") and "\r" not in err.split("\nerror: ")[1]  # nothing drawn after the error
