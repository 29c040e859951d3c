"""Reading every checkpoint format, writing safetensors, and one-line errors for bad files."""
import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import load_fixture, max_abs_diff, shared_path
from safetensors.torch import save_file

import litesr
from litesr.checkpoints import read_checkpoint, scale_from_name, unwrap_state_dict
from litesr.errors import CheckpointError
from litesr.spec import ArchSpec

VARIANTS = [
    ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)),
    ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_block=3, upscale=3, use_pixelshuffle=True)),
    ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=4, use_pixelshuffle=False)),
    ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=8, use_pixelshuffle=True)),
    ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=3, use_pixelshuffle=False)),
    ArchSpec("scnet", dict(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)),
    ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=1, norm=True, deploy=False)),
    ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=12, upscale=2, norm=True, deploy=False)),
    ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=10, upscale=3, norm=False, deploy=False)),
    ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4, norm=True, deploy=True)),
    ArchSpec("lesrcnn", dict(scale=2, multi_scale=False, num_feat=16)),
    ArchSpec("lesrcnn", dict(scale=3, multi_scale=False, num_feat=8)),
    ArchSpec("lesrcnn", dict(scale=4, multi_scale=False, num_feat=8)),
    ArchSpec("lesrcnn", dict(scale=None, multi_scale=True, num_feat=8)),
]

FORMATS = ["safetensors", "pth-raw", "pth-basicsr", "pth-ddp", "pth-legacy", "ckpt-state_dict"]


def _randomised(spec):
    torch.manual_seed(len(spec.describe()))
    net = spec.build().eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return net


def _write(fmt, net, spec, folder: Path) -> Path:
    sd = net.state_dict()
    scale_tag = f"x{net.scale}"
    if fmt == "safetensors":
        return litesr.SRModel(net, spec).save(folder / "model.safetensors")
    path = folder / f"model_{scale_tag}.{'ckpt' if fmt.startswith('ckpt') else 'pth'}"
    payload = {
        "pth-raw": sd,
        "pth-basicsr": {"params": sd, "params_ema": sd},
        "pth-ddp": {f"module.{k}": v for k, v in sd.items()},
        "pth-legacy": sd,
        "ckpt-state_dict": {"state_dict": sd, "epoch": 3},
    }[fmt]
    torch.save(payload, path, _use_new_zipfile_serialization=fmt != "pth-legacy")
    return path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("spec", VARIANTS, ids=lambda s: s.describe())
def test_round_trip_keeps_arch_kwargs_and_output(spec, fmt, tmp_path):
    net = _randomised(spec)
    path = _write(fmt, net, spec, tmp_path)
    model = litesr.load(path)
    assert model.arch == spec.arch and dict(model.spec.kwargs) == dict(spec.kwargs)
    x = torch.rand(1, spec.kwargs.get("num_in_ch", 3), 6, 5)
    with torch.no_grad():
        for scale in net.scales:
            assert torch.allclose(model.net(x, scale), net(x, scale), atol=1e-5)


def test_params_ema_is_preferred(tmp_path):
    spec = VARIANTS[0]
    ema, raw = _randomised(spec).state_dict(), spec.build().state_dict()
    torch.save({"params": raw, "params_ema": ema}, tmp_path / "x2.pth")
    loaded = read_checkpoint(tmp_path / "x2.pth").state_dict
    assert all(torch.equal(loaded[k], ema[k]) for k in ema)


def test_span_training_checkpoint_without_eval_conv_loads(tmp_path):
    state_dict, io, _ = load_fixture("span_ch16_x2")
    torch.save({"params": {k: v for k, v in state_dict.items() if ".eval_conv." not in k}}, tmp_path / "span.pth")
    model = litesr.load(tmp_path / "span.pth")
    with torch.no_grad():
        assert max_abs_diff(model.net(io["input"]), io["output_train"]) <= 1e-3
        assert max_abs_diff(model.deploy().net(io["input"]), io["output"]) <= 1e-3
    assert model.spec.kwargs["deploy"] is True


def test_deployed_model_saves_and_reloads_in_deploy_form(tmp_path):
    net = _randomised(VARIANTS[7])
    model = litesr.SRModel(net, VARIANTS[7]).deploy()
    reloaded = litesr.load(model.save(tmp_path / "fused.safetensors"))
    assert reloaded.net.deployed and reloaded.spec.kwargs["deploy"] is True
    x = torch.rand(1, 3, 7, 7)
    with torch.no_grad():
        assert torch.allclose(reloaded.net(x), model.net(x), atol=1e-5)


def test_scale_hint_from_name_and_explicit_scale(tmp_path):
    state_dict, _, _ = load_fixture("scnet_x3_mlp")
    torch.save({"params": state_dict}, tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match="pass the scale"):
        litesr.load(tmp_path / "weights.pth")
    assert litesr.load(tmp_path / "weights.pth", scale=3).scale == 3
    torch.save({"params": state_dict}, tmp_path / "SCNet-x3.pth")
    assert litesr.load(tmp_path / "SCNet-x3.pth").scale == 3
    with pytest.raises(CheckpointError, match="hint ×4 is not one of them"):
        litesr.load(tmp_path / "SCNet-x3.pth", scale=4)
    path, _ = _good_pth(tmp_path)
    with pytest.raises(CheckpointError, match="serves ×2, not the requested ×4"):
        litesr.load(path, scale=4)


@pytest.mark.parametrize("name,scale", [("SCNet-T-x4.pth", 4), ("4xSPANkendata", 4), ("lesrcnn_x2", 2),
                                        ("span_x2_x4", None), ("model", None), ("x264", None)])
def test_scale_from_name(name, scale):
    assert scale_from_name(name) == scale


def test_unwrap_reports_what_it_saw():
    with pytest.raises(CheckpointError, match="no state dict found.*'optimizer'"):
        unwrap_state_dict({"optimizer": {"lr": 1}, "iter": 3})
    assert list(unwrap_state_dict({"_orig_mod.a": torch.zeros(1)})) == ["a"]


# --- bad files: one clear sentence each ---------------------------------------------------

def _good_pth(tmp_path):
    net = _randomised(VARIANTS[0])
    path = tmp_path / "good_x2.pth"
    torch.save({"params": net.state_dict()}, path)
    return path, net.state_dict()


def test_missing_empty_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="not a file"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_pickles(tmp_path, legacy):
    _, state_dict = _good_pth(tmp_path)
    path = tmp_path / "t.pth"
    torch.save(state_dict, path, _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(path)


def test_truncated_safetensors_and_garbage(tmp_path):
    _, state_dict = _good_pth(tmp_path)
    save_file(state_dict, tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(tmp_path / "m.safetensors")
    (tmp_path / "noise.pth").write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a checkpoint|truncated or corrupt"):
        read_checkpoint(tmp_path / "noise.pth")


def test_random_pickle_bytes_are_corrupt_not_malicious(tmp_path):
    """Fuzz: damaged pickles always give the 'corrupt' sentence, never another exception."""
    rng = torch.Generator().manual_seed(0)
    for trial in range(300):
        noise = torch.randint(0, 256, (512,), generator=rng, dtype=torch.uint8).numpy().tobytes()
        (tmp_path / "noise.pth").write_bytes(b"\x80\x02" + noise)
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            read_checkpoint(tmp_path / "noise.pth")


def test_weights_that_do_not_fit(tmp_path):
    path, state_dict = _good_pth(tmp_path)
    broken = dict(state_dict)
    broken["body.0.conv2.weight"] = torch.zeros(8, 4, 1, 1)
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"shape mismatch body\.0\.conv2\.weight \(8, 4, 1, 1\) vs \(8, 8, 1, 1\)"):
        litesr.load(path)
    del broken["body.0.conv2.weight"]
    broken["extra.bias"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"missing keys body\.0\.conv2\.weight; unexpected keys extra\.bias"):
        litesr.load(path)


class _Payload:
    """Unpickling this would create the marker file: proof of code execution."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "torch-zip", "torch-legacy"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    payload = {"params": {"conv_first.weight": torch.zeros(1)}, "evil": _Payload(marker)}
    path = tmp_path / "evil.pth"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=writer == "torch-zip")
    assert not marker.exists()
    # Sanity: a plain unpickle really would run the payload.
    if writer == "pickle":
        pickle.loads(path.read_bytes())
        assert marker.exists()
        marker.unlink()
    with pytest.raises(CheckpointError, match="refused to load"):
        litesr.load(path)
    assert not marker.exists()


# --- released weights ------------------------------------------------------------------------

RELEASED = [
    "lesrcnn/lesrcnn_x2.pth", "lesrcnn/lesrcnn_x3.pth", "lesrcnn/lesrcnn_x4.pth",
    "span/official_via_ncnn/spanx2_ch48_eval_from_ncnn.pth", "span/official_via_ncnn/spanx2_ch52_eval_from_ncnn.pth",
    "span/official_via_ncnn/spanx4_ch48_eval_from_ncnn.pth", "span/official_via_ncnn/spanx4_ch52_eval_from_ncnn.pth",
    "span/ntire2024_esr/team38_span_ch28_slim.pth", "span/ntire2024_esr/team39_spantiny_ch26_slim.pth",
]
PARAMS = {"spanx2_ch48": 410_700, "spanx2_ch52": 481_324, "spanx4_ch48": 426_288, "spanx4_ch52": 498_208,
          "team38": 150_688, "team39": 130_828}


@pytest.mark.parametrize("relative", RELEASED)
def test_released_weights_load_by_path_alone(relative):
    model = litesr.load(shared_path("weights", *relative.split("/")))
    stem = Path(relative).stem
    expected = next((n for key, n in PARAMS.items() if stem.startswith(key)), None)
    if expected is not None:
        assert model.num_params() == expected
    with torch.no_grad():
        out = model.net(torch.rand(1, 3, 8, 8))
    assert out.shape[-1] == 8 * model.scale and torch.isfinite(out).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_released_lesrcnn_reproduces_fixture(scale):
    _, io, _ = load_fixture(f"lesrcnn_x{scale}_released")
    model = litesr.load(shared_path("weights", "lesrcnn", f"lesrcnn_x{scale}.pth"))
    with torch.no_grad():
        assert max_abs_diff(model.net(io["input"]), io["output"]) <= 1e-4


# ------------------------------------------------------------------ hostile and malformed files

TINY_SCNET = ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2,
                                    use_pixelshuffle=True))
TINY_LESRCNN = ArchSpec("lesrcnn", dict(scale=2, multi_scale=False, num_feat=8))


def _tiny_state(spec=TINY_SCNET):
    torch.manual_seed(0)
    return dict(spec.build().state_dict())


def _safetensors_with_metadata(path, metadata_spec):
    save_file({k: v.contiguous() for k, v in _tiny_state().items()}, str(path),
              metadata={"litesr.spec": metadata_spec, "format": "pt"})


def _without(state, key):
    return {k: v for k, v in state.items() if k != key}


def _with(state, key, value):
    return {**state, key: value}


MALFORMED = {
    "spec-not-json": (lambda p: _safetensors_with_metadata(p, "{not json"), "metadata is not JSON"),
    "spec-bogus-keyword": (lambda p: _safetensors_with_metadata(p, '{"arch": "scnet", "kwargs": {"bogus": 1}}'),
                           "arguments it does not take: 'bogus'"),
    "spec-no-arch": (lambda p: _safetensors_with_metadata(p, '{"kwargs": {}}'), "names no 'arch'"),
    "spec-unknown-arch": (lambda p: _safetensors_with_metadata(p, '{"arch": "edsr", "kwargs": {}}'),
                          "unknown architecture 'edsr'"),
    "spec-disagrees": (lambda p: _safetensors_with_metadata(
        p, ArchSpec("scnet", {**TINY_SCNET.kwargs, "num_feat": 3000}).to_json()), "metadata says .*num_feat=3000 vs 8"),
    "lesrcnn-missing-upsampler": (lambda p: torch.save(_without(_tiny_state(TINY_LESRCNN), "upsample.up.body.0.weight"), p),
                                  "has no upsampler weights \\(upsample.up.body"),
    "scnet-missing-upsampler": (lambda p: torch.save(_without(_tiny_state(), "upconv1.up_layer.3.weight"), p),
                                "lacks 'upconv1.up_layer.3.weight'"),
    "zero-channels": (lambda p: torch.save(_with(_tiny_state(), "conv_first.weight", torch.zeros(0, 3, 1, 1)), p),
                      "'conv_first.weight' is empty"),
    "1d-conv-weight": (lambda p: torch.save(_with(_tiny_state(), "conv_first.weight", torch.zeros(8)), p),
                       "'conv_first.weight' should be a 4-D tensor, found 1-D"),
    "meta-tensor": (lambda p: torch.save(_with(_tiny_state(), "conv_hr.weight", torch.empty(8, 8, 1, 1, device="meta")), p),
                    "holds no data|truncated or corrupt"),
    "sparse-tensor": (lambda p: torch.save(_with(_tiny_state(), "conv_hr.bias", torch.zeros(8).to_sparse()), p),
                      "sparse"),
    "pickle-named-safetensors": (lambda p: torch.save(_tiny_state(), p), None),
    "nan-weights": (lambda p: torch.save(_with(_tiny_state(), "conv_hr.weight", torch.full((8, 8, 1, 1), float("nan"))), p),
                    "'conv_hr.weight' contains NaN or infinite values"),
    "inf-weights": (lambda p: torch.save(_with(_tiny_state(), "conv_hr.bias", torch.full((8,), float("inf"))), p),
                    "'conv_hr.bias' contains NaN or infinite values"),
    "integer-weights": (lambda p: torch.save({k: (v * 100).long() for k, v in _tiny_state().items()}, p),
                        "is int64, not floating point"),
    "expanded-view": (lambda p: torch.save(_with(_tiny_state(), "conv_hr.weight", torch.zeros(1, 1, 1, 1).expand(8, 8, 1, 1)), p),
                      "broadcast view"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_checkpoint_is_one_sentence_naming_the_file(tmp_path, case):
    make, message = MALFORMED[case]
    path = tmp_path / (f"{case}.safetensors" if case.startswith(("spec-", "pickle-named")) else f"{case}_x2.pth")
    make(path)
    if message is None:  # the content decides, not the suffix: a pickle named .safetensors still loads
        assert litesr.load(path).arch == "scnet"
        return
    with pytest.raises(CheckpointError, match=message) as caught:
        litesr.load(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_tiny_file_declaring_a_huge_network_is_refused_before_building(tmp_path):
    """Expanded views declaring num_feat=6000 would build a 1.3 GB SCNet; nothing is allocated."""
    import tracemalloc

    huge = 6000
    state = {key: torch.zeros(1).expand(*([huge if s == 8 else s for s in value.shape]))
             for key, value in _tiny_state().items()}
    path = tmp_path / "bomb_x2.pth"
    torch.save(state, path)
    assert path.stat().st_size < 20_000
    tracemalloc.start()
    with pytest.raises(CheckpointError, match="broadcast view"):
        litesr.load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 << 20


def test_deflated_storage_is_refused_before_inflating(tmp_path):
    import zipfile

    path = tmp_path / "plain.pth"
    torch.save(_tiny_state(), path)
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr(f"{source.namelist()[0].split('/')[0]}/data/padding", b"\0" * (64 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(CheckpointError, match="expands to .* zip bomb"):
        litesr.load(bomb)
