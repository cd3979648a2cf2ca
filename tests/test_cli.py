"""Every CLI error path: one line on stderr, exit code 2, no traceback, nothing written."""

import json
import os
import subprocess
import sys

import pytest


def run_cli(args, tmp_path, **env):
    e = dict(os.environ, ARLIB_RESULTS=str(tmp_path / "results"), **env)
    return subprocess.run([sys.executable, "-m", "arlib.cli", *args], capture_output=True, text=True, env=e, timeout=120)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--dataset", "mnist"],
        ["train", "--model", "resnet57"],
        ["train", "--eps", "-1"],
        ["train", "--eps", "256"],
        ["train", "--data-root", "/does/not/exist"],
        ["train", "--profile", "huge"],
        ["train", "--config", "/does/not/exist.json"],
        ["train", "--config", "MALFORMED"],
        ["train", "--config", "UNKNOWN_FIELD"],
        ["train", "--config", "BAD_VALUE"],
        ["grid", "--experiments", "nonsense"],
        ["train", "--epochs", "many"],
        ["frobnicate"],
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args):
    subs = {
        "MALFORMED": write(tmp_path, "m.json", "{not json"),
        "UNKNOWN_FIELD": write(tmp_path, "u.json", json.dumps({"train": {"epochz": 3}})),
        "BAD_VALUE": write(tmp_path, "b.json", json.dumps({"adv": {"method": "pgd", "eps": 999}})),
    }
    args = [subs.get(a, a) for a in args]
    r = run_cli(args, tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "results").exists()


def test_missing_data_exits_2_and_writes_nothing(tmp_path):
    r = run_cli(
        ["train", "--profile", "smoke", "--eps", "4"],
        tmp_path,
        ARLIB_DATA=str(tmp_path / "empty"),
        ARLIB_CACHE=str(tmp_path / "cache"),
        ARLIB_NO_DOWNLOAD="1",
        ARLIB_NO_SHARED="1",
    )
    assert r.returncode == 2
    assert "cifar10" in r.stderr and "not found" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_grid_dry_run_lists_cells(tmp_path):
    r = run_cli(["grid", "--profile", "cpu", "--dry-run"], tmp_path)
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    # pgd (0,4,8,16) x 3 seeds + fgsm 3 + deep 3 + spectral 3x3, plus a second seed of
    # fgsm, deep and the tightest spectral target at the ends of the eps grid (4 and 16)
    assert len(lines) == 4 * 3 + 3 + 3 + 9 + 2 + 2 + 2
    assert not (tmp_path / "results").exists()


def test_analyse_is_spelled_one_way_and_the_old_spelling_still_parses():
    from arlib.cli import build_parser, cmd_analyse

    for word in ("analyse", "analyze"):
        assert build_parser().parse_args([word]).fn is cmd_analyse
    assert build_parser().parse_args(["train", "--analyze"]).analyse is True
    assert build_parser().parse_args(["grid", "--no-analyze"]).no_analyse is True
