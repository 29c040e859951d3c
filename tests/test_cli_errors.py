"""The CLI's error contract, command by command, over a corpus of users' mistakes.

Every failure a user can cause ends with one ``error:`` line naming the file and the
problem and exit status 1; usage mistakes print the sub-command's usage and exit with 2;
nothing prints a traceback. Unexpected exceptions are reported as internal errors.
"""
from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import litesr
import litesr.cli
from litesr.archs import SCNet
from litesr.checkpoints import save_safetensors
from litesr.cli import main

TINY = dict(num_feat=8, num_block=1, upscale=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Good and bad files, by name; ``{name}`` in a case's arguments is replaced by its path."""
    root = tmp_path_factory.mktemp("corpus")
    torch.manual_seed(0)
    weights = save_safetensors(root / "tiny_x2.safetensors", SCNet(**TINY), litesr.ArchSpec("scnet", TINY))
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "good.png")
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("this is not an image")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    (root / "truncated.png").write_bytes(buffer.getvalue()[:60])
    (root / "folder").mkdir()
    (root / "no_images").mkdir()
    (root / "no_images" / "readme.txt").write_text("no images here")
    (root / "empty.pth").write_bytes(b"")
    (root / "random.pth").write_bytes(np.random.default_rng(1).bytes(512))
    (root / "pickle.safetensors").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    (root / "notes.txt").write_text("a file where a folder is expected")
    (root / "empty.yml").write_text("")
    (root / "malformed.yml").write_text("name: x\ntrain: [unclosed\n  scale: 2\n")
    (root / "list.yml").write_text("- just\n- a list\n")
    bench = root / "Bench" / "HR"
    bench.mkdir(parents=True)
    Image.fromarray(pixels).save(bench / "p.png")
    broken = root / "Broken" / "HR"
    broken.mkdir(parents=True)
    (broken / "q.png").write_bytes(buffer.getvalue()[:60])
    paths = {path.name: str(path) for path in root.iterdir()}
    return {**paths, "weights": str(weights), "missing.png": str(root / "missing.png"),
            "missing.pth": str(root / "missing.pth"), "missing.yml": str(root / "missing.yml"),
            "out": str(root / "out"), "root": str(root)}


def _case(command: str, args: str, code: int, *fragments: str) -> object:
    """``litesr <command> <args>`` must exit with ``code``, its error naming every fragment."""
    return pytest.param(command, args, code, fragments, id=f"{command} {args}")


UPSCALE = "{good.png} -o {out} -q"
EVAL = "--data {Bench} --scale 2 -q"
CASES = [
    _case("upscale", "{missing.png} -o {out} -w {weights}", 1, "missing.png", "no such file"),
    _case("upscale", "{empty.png} -o {out} -w {weights}", 1, "empty.png"),
    _case("upscale", "{text.png} -o {out} -w {weights}", 1, "text.png"),
    _case("upscale", "{truncated.png} -o {out} -w {weights}", 1, "truncated.png"),
    _case("upscale", "{no_images} -o {out} -w {weights}", 1, "no_images", "no images"),
    _case("upscale", f"{UPSCALE} -w {{folder}}", 1, "folder", "is a folder"),
    _case("upscale", f"{UPSCALE} -w {{missing.pth}}", 1, "missing.pth", "no such file"),
    _case("upscale", f"{UPSCALE} -w {{empty.pth}}", 1, "empty.pth"),
    _case("upscale", f"{UPSCALE} -w {{random.pth}}", 1, "random.pth"),
    _case("upscale", f"{UPSCALE} -w {{pickle.safetensors}}", 1, "pickle.safetensors"),
    _case("upscale", f"{UPSCALE} -w {{text.png}}", 1, "text.png"),
    _case("upscale", f"{UPSCALE} -m no-such-model", 1, "no-such-model"),
    _case("upscale", f"{UPSCALE} -w {{weights}} --scale 3", 1, "tiny_x2.safetensors"),
    _case("upscale", f"{UPSCALE} -w {{weights}} --device cuda", 1, "cuda"),
    _case("upscale", f"{UPSCALE} -w {{weights}} --device tpu", 1, "tpu"),
    _case("upscale", f"{UPSCALE} -w {{weights}} --device cpu --precision fp16", 1, "fp16"),
    _case("upscale", "{good.png} {text.png} -o {notes.txt} -w {weights}", 1, "notes.txt", "several inputs"),
    _case("upscale", "{good.png} -o {notes.txt} -w {weights}", 1, "notes.txt", "like an image"),
    _case("upscale", "{good.png} -o {notes.txt}/sub -w {weights}", 1, "notes.txt", "not a folder"),
    _case("upscale", "{good.png} -o {notes.txt}/x.png -w {weights}", 1, "notes.txt", "not a folder"),
    _case("upscale", "{good.png} -o {folder} -w {random.pth} --backend onnxruntime --compile", 2,
          "--compile applies to --backend torch"),
    _case("upscale", f"{UPSCALE} -w {{weights}} --tiel 16", 2, "usage: litesr upscale", "did you mean --tile?"),
    _case("upscale", f"{UPSCALE} -w {{weights}} --tile -3", 2, "usage: litesr upscale", "--tile"),
    _case("upscale", "{good.png} -w {weights}", 2, "usage: litesr upscale", "-o/--output"),
    _case("info", "{missing.pth}", 1, "missing.pth", "no such file"),
    _case("info", "{empty.pth}", 1, "empty.pth"),
    _case("info", "{random.pth}", 1, "random.pth"),
    _case("info", "{pickle.safetensors}", 1, "pickle.safetensors"),
    _case("info", "{text.png}", 1, "text.png"),
    _case("info", "{folder}", 1, "folder"),
    _case("info", "no-such-model", 1, "no-such-model"),
    _case("info", "{weights} --scale 3", 1, "tiny_x2.safetensors"),
    _case("info", "{weights} --scael 2", 2, "usage: litesr info", "did you mean --scale?"),
    _case("models", "--instaled", 2, "usage: litesr models", "did you mean --installed?"),
    _case("eval", f"-w {{missing.pth}} {EVAL}", 1, "missing.pth", "no such file"),
    _case("eval", f"-w {{random.pth}} {EVAL}", 1, "random.pth"),
    _case("eval", f"-w {{pickle.safetensors}} {EVAL}", 1, "pickle.safetensors"),
    _case("eval", f"-w {{folder}} {EVAL}", 1, "folder", "is a folder"),
    _case("eval", f"-m no-such-model {EVAL}", 1, "no-such-model"),
    _case("eval", "-w {weights} --data {Bench} --scale 3 -q", 1, "tiny_x2.safetensors"),
    _case("eval", "-w {weights} --data {missing.png} --scale 2 -q", 1, "missing.png", "does not exist"),
    _case("eval", "-w {weights} --data {notes.txt} --scale 2 -q", 1, "notes.txt"),
    _case("eval", "-w {weights} --data {Broken} --scale 2 -q", 1, "q.png"),
    _case("eval", f"-w {{weights}} {EVAL} --device cuda", 1, "cuda"),
    _case("eval", f"-w {{weights}} {EVAL} --json {{notes.txt}}/r.json", 1, "notes.txt", "not a folder"),
    _case("eval", f"-w {{weights}} {EVAL} --csv {{folder}}", 1, "folder", "is a folder"),
    _case("eval", f"-w {{weights}} {EVAL} --dta x", 2, "usage: litesr eval", "did you mean --data?"),
    _case("eval", "-w {weights} --data {Bench} -s 2", 2, "usage: litesr eval", "the network scale is --scale"),
    _case("info", "{weights} -s 2", 2, "usage: litesr info", "the network scale is --scale"),
    _case("train", "{missing.yml}", 1, "missing.yml"),
    _case("train", "{empty.yml}", 1, "empty.yml"),
    _case("train", "{malformed.yml}", 1, "malformed.yml"),
    _case("train", "{list.yml}", 1, "list.yml"),
    _case("train", "{folder}", 1, "folder"),
    _case("train", "{malformed.yml} --device cuda", 1, "cuda"),
    _case("train", "{malformed.yml} --resme", 2, "usage: litesr train", "did you mean --resume?"),
    _case("profile", "-w {missing.pth} --runs 1", 1, "missing.pth", "no such file"),
    _case("profile", "-w {random.pth} --runs 1", 1, "random.pth"),
    _case("profile", "-w {pickle.safetensors} --runs 1", 1, "pickle.safetensors"),
    _case("profile", "-w {folder} --runs 1", 1, "folder", "is a folder"),
    _case("profile", "-m no-such-model --runs 1", 1, "no-such-model"),
    _case("profile", "-w {weights} --scale 3 --runs 1", 1, "tiny_x2.safetensors"),
    _case("profile", "-w {weights} --device cuda", 1, "cuda"),
    _case("profile", "-w {weights} --device cpu --precision fp16", 1, "fp16"),
    _case("profile", "-w {weights} --threads 0", 2, "usage: litesr profile", "--threads"),
    _case("profile", "-w {weights} --sise 8", 2, "usage: litesr profile", "did you mean --size?"),
    _case("export", "-w {missing.pth} -o {out}.onnx", 1, "missing.pth", "no such file"),
    _case("export", "-w {random.pth} -o {out}.onnx", 1, "random.pth"),
    _case("export", "-w {pickle.safetensors} -o {out}.onnx", 1, "pickle.safetensors"),
    _case("export", "-w {weights} -o {notes.txt}/m.onnx", 1, "notes.txt", "not a folder"),
    _case("export", "-w {weights} -o {folder}", 1, "folder", "is a folder"),
    _case("export", "-w {weights} -o {out}.onnx --scale 3", 1, "tiny_x2.safetensors"),
    _case("export", "-w {weights} -o {out}.onnx --opst 11", 2, "usage: litesr export", "did you mean --opset?"),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command, args, code, fragments", CASES)
def test_user_mistakes(command, args, code, fragments, corpus, capsys):
    argv = [command, *(re.sub(r"\{([^}]+)\}", lambda name: corpus[name[1]], word) for word in args.split())]
    exit_code, out, err = _run(argv, capsys)
    assert "Traceback" not in out + err
    assert exit_code == code, err
    if code == 1:
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert lines, err
        assert any(all(fragment in line for fragment in fragments) for line in lines), err
        assert "internal error" not in err
    else:
        assert f"litesr {command}: error: " in err
        for fragment in fragments:
            assert fragment in err


def test_misspelled_command_is_a_usage_error(capsys):
    code, _, err = _run(["upscal", "a.png"], capsys)
    assert code == 2 and "invalid choice: 'upscal'" in err and "Traceback" not in err


def test_a_bug_is_one_line_asking_for_a_report(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(litesr.cli.info, "command_models", broken)
    monkeypatch.delenv("LITESR_DEBUG", raising=False)
    code, _, err = _run(["models"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[0] == "error: internal error: ZeroDivisionError: division by zero"
    assert "LITESR_DEBUG=1" in err
    monkeypatch.setenv("LITESR_DEBUG", "1")
    code, _, err = _run(["models"], capsys)
    assert code == 1 and "Traceback" in err and "ZeroDivisionError" in err


def test_an_os_error_is_one_line_naming_the_file(monkeypatch, capsys):
    def full_disk(args):
        raise OSError(28, "No space left on device", "/data/out.png")

    monkeypatch.setattr(litesr.cli.info, "command_models", full_disk)
    monkeypatch.delenv("LITESR_DEBUG", raising=False)
    code, _, err = _run(["models"], capsys)
    assert code == 1 and err == "error: /data/out.png: no space left on device\n"


def test_unwritable_folder_is_one_error_up_front(corpus, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: make the OS answer as it would for a user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    for output in (locked / "out", locked / "x.png"):
        code, _, err = _run(["upscale", corpus["good.png"], "-o", str(output), "-w", corpus["weights"]], capsys)
        assert code == 1 and err.count("error: ") == 1 and f"the folder {locked} is not writable" in err
    code, _, err = _run(["eval", "--bicubic", "--data", corpus["Bench"], "--scale", "2", "--json",
                         str(locked / "r.json")], capsys)
    assert code == 1 and err == f"error: cannot write --json {locked / 'r.json'}: the folder {locked} is not writable\n"


def test_corpus_weights_are_good(corpus, capsys):
    """The cases above fail for the reason they name, not because the reference inputs are broken."""
    code, _, err = _run(["upscale", corpus["good.png"], "-o", str(Path(corpus["root"]) / "ok"), "-w",
                         corpus["weights"], "-q"], capsys)
    assert code == 0, err
    assert Image.open(Path(corpus["root"]) / "ok" / "good_x2.png").size == (32, 32)


MINIMAL_ARGUMENTS = {
    "upscale": ["a.png", "-o", "out"], "info": ["a.pth"], "eval": ["--bicubic", "--data", "d"],
    "train": ["c.yml"], "profile": [], "export": ["-o", "m.onnx"],
}


@pytest.mark.parametrize("command", sorted(MINIMAL_ARGUMENTS))
def test_shared_options_mean_the_same_in_every_command(command, capsys):
    parser = litesr.cli.build_parser()
    args = parser.parse_args([command, *MINIMAL_ARGUMENTS[command]])
    if hasattr(args, "device"):
        assert args.device == "auto"
    if command != "train":
        assert parser.parse_args([command, *MINIMAL_ARGUMENTS[command], "--scale", "3"]).scale == 3
        with pytest.raises(SystemExit):
            parser.parse_args([command, *MINIMAL_ARGUMENTS[command], "--scale", "0"])
        assert "positive integer" in capsys.readouterr().err
    if hasattr(args, "outscale"):  # -s is --outscale wherever it exists, never --scale
        assert parser.parse_args([command, *MINIMAL_ARGUMENTS[command], "-s", "2.5"]).outscale == 2.5


def test_onnx_model_at_a_scale_it_lacks(corpus, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from litesr.export import export_onnx

    onnx_file = tmp_path / "tiny.onnx"
    export_onnx(litesr.load(corpus["weights"]), onnx_file, size=(16, 16), dynamic_shape=True)
    code, out, err = _run(["upscale", corpus["good.png"], "-o", str(tmp_path / "out"), "-w", str(onnx_file),
                           "--backend", "onnxruntime", "--scale", "3"], capsys)
    assert code == 1 and "Traceback" not in out + err and "internal error" not in err
    assert err.startswith("error: ") and "tiny.onnx" in err and "×3" in err, err
    code, _, err = _run(["info", str(onnx_file)], capsys)
    assert code == 1 and err.startswith("error: ") and "tiny.onnx" in err and "internal error" not in err
