"""`litesr info` and `litesr models`."""
from conftest import shared_path

from litesr.cli import main


def test_info_on_released_weights(capsys):
    assert main(["info", str(shared_path("weights", "span", "ntire2024_esr", "team38_span_ch28_slim.pth"))]) == 0
    out = capsys.readouterr().out
    assert "architecture: span (deploy form)" in out and "feature_channels: 28" in out
    assert "scale:        ×4" in out and "parameters:   150,688" in out


def test_info_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    assert main(["info", str(tmp_path / "junk.pth")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "junk.pth" in err
    assert main(["info", str(tmp_path / "absent.pth")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["model", "arch", "scale"]
    assert "span-x4.official" in out and "lesrcnn-x2.official" in out
