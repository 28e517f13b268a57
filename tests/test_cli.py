"""The command lines as a user meets them (issue 26): a bad flag is refused at once (before torch is imported)
with a short message and a "did you mean"; --help runs nothing; one meaning per flag name across the
commands; --device cuda:N; no command writes a file git tracks unless told to, run with its defaults in a
fresh clone."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import fresh_clone as clone
import pytest
import torch
from commands import parsers

ROOT = Path(__file__).resolve().parents[1]

# each command, how it runs, a near-miss flag (with what the command needs besides) and its suggestion
COMMANDS = [
    ("python -m ml.train", ["--presets", "fast"], "--preset"),
    ("python -m ml.predict", ["x.png", "--prob"], "--probs"),
    ("python -m ml.explain", ["x.png", "--out-dri", "d"], "--out-dir"),
    ("python -m ml.backprop", ["--epoch", "3"], "--epochs"),
    ("python -m excel_addin.report", ["runs/x", "--outt", "r.xlsx"], "--out"),
    ("python -m excel_addin.xlsm", ["--outt", "t.xlsm"], "--out"),
    ("python bench/mnist_bench.py", ["--seed", "1"], "--seeds"),
    ("python bench/backprop_bench.py", ["--repeat", "3"], "--repeats"),
    ("python bench/textbook.py", ["--out", "t.json", "--seeds", "2"], "--seed"),
    ("python bench/step_profile.py", ["--devices", "cuda"], "--device"),
    ("python bench/quickstart_bench.py", ["--repeat", "2"], "--repeats"),
    ("python bench/doc_figures.py", ["--updat", "README.md"], "--update"),
]

# Runs a command's main in this process, as `python -m X` or `python X.py` would: with --help, then with
# the given arguments. Prints each exit code and output, and whether torch was imported at any point.
DRIVER = """
import contextlib, io, json, runpy, sys
from pathlib import Path

target, *argv = sys.argv[1:]
results = []
for args in (["--help"], argv):
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [target, *args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if target.endswith(".py"):
                sys.path.insert(0, str(Path(target).parent))
                runpy.run_path(target, run_name="__main__")
            else:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            code = stop.code
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps({"results": results, "torch": "torch" in sys.modules}))
"""


def target_of(prog: str) -> str:
    """``python -m ml.train`` -> ml.train; ``python bench/x.py`` -> bench/x.py."""
    words = prog.split()
    return words[2] if words[1] == "-m" else words[1]


@pytest.mark.slow
@pytest.mark.parametrize(("prog", "args", "suggested"), COMMANDS, ids=[c[0].split()[-1] for c in COMMANDS])
def test_a_near_miss_flag_is_refused_at_once_with_a_suggestion_and_help_runs_nothing(prog, args, suggested):
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, target_of(prog), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    helped, refused = report["results"]
    assert helped["code"] == 0 and helped["out"].startswith(f"usage: {prog}") and not helped["err"]
    wrong = args[-2] if args[-1][0] != "-" else args[-1]
    assert refused["code"] == 2
    assert (
        refused["err"].splitlines()
        == [  # two lines, not argparse's usage above the error
            f"{prog}: error: unrecognized arguments: {' '.join(args[args.index(wrong) :])}; "
            f"did you mean {suggested}?",
            f"({prog} --help lists every option)",
        ]
    )
    assert report["torch"] is False  # checked before torch loads: refused in well under a second


@pytest.mark.parametrize(
    ("main", "args", "hint"),
    [
        ("ml.train", ["--out", "runs/x"], "--out is now --run-dir (the run's folder)"),
        ("ml.predict", ["x.png", "--model", "m.pt"], "--model is now --checkpoint FILE"),
        ("ml.predict", ["x.png", "--explain"], "--explain is now its own command: python -m ml.explain PATH"),
        ("ml.explain", ["x.png", "--out", "x.png"], "--out is now --out-dir DIR"),
        ("mnist_bench", ["--work", "runs/w"], "--work is now --work-dir DIR"),
        ("mnist_bench", ["--compile"], "--compile is now --time-compiled"),
        ("backprop_bench", ["--json", "b.json"], "--json is now --out FILE"),
    ],
)
def test_a_renamed_flag_names_its_new_spelling(main, args, hint, capsys):
    module = __import__(main, fromlist=["main"])
    with pytest.raises(SystemExit) as stop:
        module.main(args)
    assert stop.value.code == 2 and hint in capsys.readouterr().err


def test_one_meaning_per_flag_name_across_the_commands():
    """--out is always a file, a folder is always --*-dir, a model file is --checkpoint; --model (an
    architecture) is ml.train's alone; a flag that two commands share is spelled the same way in both."""
    seen: dict[str, set] = {}
    progs = parsers()
    assert set(progs) == {prog for prog, _, _ in COMMANDS}
    for prog, parser in progs.items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag == "--out":
                    assert action.metavar == "FILE", prog
                if flag.endswith("-dir") or action.metavar == "DIR":
                    assert flag.endswith("-dir") and action.metavar == "DIR", (prog, flag)
                if flag == "--checkpoint":
                    assert action.metavar == "FILE", prog
                seen.setdefault(flag, set()).add(prog)
    assert seen["--model"] == {"python -m ml.train"}
    assert seen["--checkpoint"] == {"python -m ml.predict", "python -m ml.explain"}
    assert (
        "--explain" not in seen and "--work" not in seen and "--json" not in seen and "--output" not in seen
    )


def test_the_device_takes_cuda_n_and_says_when_there_is_no_gpu(tmp_path, capsys):
    from ml import train
    from ml.config import config_from_values

    assert config_from_values({"device": "cuda:1"}).device == "cuda:1"
    assert "{auto,cpu,cuda,mps,cuda:N}" in train.build_parser().format_help()  # help and choices agree
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = f"cuda:{max(gpus, 1)}"  # a GPU this machine does not have
    code = train.main(["--device", missing, "--dry-run", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    if gpus:
        assert (
            f"error: device '{missing}' requested but torch sees {gpus} GPU(s): cuda:0 to cuda:{gpus - 1}"
            in err
        )
    else:
        assert f"python -m ml.train: error: device '{missing}' requested but there is no GPU here" in err
        assert "use device auto or cpu" in err


def test_ml_predict_does_not_import_the_explanation():
    """ml.explain has its own entry point; ml.predict imports neither it nor ml.explanation, anywhere."""
    tree = ast.parse((ROOT / "ml" / "predict.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    ]
    assert not [name for name in imported if "explain" in name]


@pytest.mark.slow
def test_the_commands_with_their_defaults_write_no_tracked_file(fresh_clone, bench_speed_run):
    """In a fresh clone, every command run as the docs show it, with its default outputs, leaves git's view
    of the clone unchanged: what it writes goes under runs/ (ignored). The commands run side by side."""
    runs = fresh_clone / "runs"
    commands = {
        ("-m", "ml.predict", "examples/digits/7.png"): None,
        ("-m", "ml.explain", "examples/digits/7.png"): runs / "explained" / "7-explained.png",
        ("-m", "ml.backprop", "--epochs", "3"): None,
        ("-m", "excel_addin.xlsm"): runs / "workbook_template.xlsm",
        ("bench/backprop_bench.py", "--repeats", "1"): runs / "bench" / "backprop.json",
    }
    times = clone.tracked_times(fresh_clone)
    started = {command: clone.start(fresh_clone, *command) for command in commands}
    dry = clone.run(fresh_clone, "-m", "ml.train", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert dry.stderr.splitlines()[-1] == "Set-up OK: train for real without --dry-run"
    report = clone.run(fresh_clone, "-m", "excel_addin.report", "runs/dry-run")
    assert report.returncode == 0 and (runs / "dry-run" / "report.xlsx").is_file(), report.stderr[-2000:]
    finished = {command: (process, *process.communicate(timeout=600)) for command, process in started.items()}
    for command, (process, _, err) in finished.items():
        assert process.returncode == 0, (command, err[-2000:])
        assert commands[command] is None or commands[command].is_file(), command
    _, out, err = finished[("-m", "ml.predict", "examples/digits/7.png")]
    assert out.startswith("examples/digits/7.png: 7 (p=")
    assert "ml/weights/mnist_cnn.pt (the shipped model" in err  # it says which model it used
    assert bench_speed_run.returncode == 0 and (runs / "bench" / "mnist.json").is_file()
    assert clone.changes(fresh_clone) == []
    assert clone.tracked_times(fresh_clone) == times  # not even rewritten with the same bytes
