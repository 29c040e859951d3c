"""Parser of ncnn's text ``.param`` graph: the layers, their blobs and their parameters.

Format: line 1 is the magic ``7767517``; line 2 is ``layer_count blob_count``; each further
line is ``type name n_in n_out in_blobs... out_blobs... k=v ...``. A key ``k <= -23300``
marks an array parameter with id ``-23300 - k`` whose value is ``len,v1,v2,...``. A value
containing ``.``, ``e`` or ``E`` is a float, otherwise an int.

Every count the file states is checked against what the file actually holds before it is
used, so a malformed or hostile file fails with one sentence naming the file and line.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from .files import read_model_file
from .graph import NCNN_MAGIC, NcnnGraph, NcnnLayer, ParamValue

_ARRAY_KEY_BASE = -23300


def _is_float_token(tok: str) -> bool:
    # Same rule as ncnn's vstr_is_float: a '.' or an exponent marks a float.
    return any(ch in ".eE" for ch in tok)


def _parse_scalar(tok: str, where: str) -> ParamValue:
    if tok.startswith('"'):
        return tok.strip('"')
    try:
        return float(tok) if _is_float_token(tok) else int(tok)
    except ValueError:
        raise CheckpointError(f"{where}: cannot parse parameter value {tok!r}") from None


def _parse_params(tokens: list[str], where: str) -> dict[int, ParamValue]:
    params: dict[int, ParamValue] = {}
    for tok in tokens:
        key_s, sep, val = tok.partition("=")
        if not sep:
            raise CheckpointError(f"{where}: parameter {tok!r} is not of the form id=value")
        try:
            key = int(key_s)
        except ValueError:
            raise CheckpointError(f"{where}: parameter id {key_s!r} is not an integer") from None
        if key > _ARRAY_KEY_BASE:
            params[key] = _parse_scalar(val, where)
            continue
        length, *items = val.split(",")
        try:
            declared = int(length)
        except ValueError:
            raise CheckpointError(f"{where}: array parameter {tok!r} has no integer length") from None
        if len(items) != declared:
            raise CheckpointError(f"{where}: array parameter {tok!r} declares {declared} values but has {len(items)}")
        params[_ARRAY_KEY_BASE - key] = [_parse_scalar(v, where) for v in items]
    return params


def _parse_count(text: str, where: str, what: str) -> int:
    """A non-negative integer count; a negative one would silently mis-slice the blob lists."""
    try:
        value = int(text)
    except ValueError:
        raise CheckpointError(f"{where}: {what} {text!r} is not an integer") from None
    if value < 0:
        raise CheckpointError(f"{where}: {what} {value} is negative")
    return value


def _parse_layer(line: str, where: str) -> NcnnLayer:
    tok = line.split()
    if len(tok) < 4:
        raise CheckpointError(f"{where}: layer line {line[:60]!r} has fewer than 4 fields")
    n_in = _parse_count(tok[2], where, f"input count of layer {tok[1]!r}")
    n_out = _parse_count(tok[3], where, f"output count of layer {tok[1]!r}")
    if len(tok) < 4 + n_in + n_out:
        raise CheckpointError(f"{where}: layer {tok[1]!r} lists fewer blobs than its counts {n_in} {n_out}")
    inputs = tok[4 : 4 + n_in]
    outputs = tok[4 + n_in : 4 + n_in + n_out]
    return NcnnLayer(tok[0], tok[1], inputs, outputs, _parse_params(tok[4 + n_in + n_out :], where))


def _check_single_producers(layers: list[NcnnLayer], path: Path) -> None:
    """Each blob has one producer: with two, which one a reader means would be a guess."""
    producer: dict[str, str] = {}
    for layer in layers:
        for blob in layer.outputs:
            if blob in producer:
                raise CheckpointError(
                    f"{path}: blob {blob!r} is produced by both layer {producer[blob]!r} and layer {layer.name!r}"
                )
            producer[blob] = layer.name


def read_ncnn_param(param_path: str | os.PathLike[str]) -> NcnnGraph:
    """Parse an ncnn text ``.param`` graph (no weights); checks the magic and the counts."""
    path = Path(param_path)
    text = read_model_file(path, ".param").decode("utf-8", errors="replace")
    lines = [(lineno, ln.strip()) for lineno, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    first = lines[0][1] if lines else ""
    if first != str(NCNN_MAGIC):
        raise CheckpointError(
            f"{path}: not an ncnn text .param file (its first line is {first[:40]!r}, expected the magic {NCNN_MAGIC})"
        )
    if len(lines) < 2:
        raise CheckpointError(f"{path}: ends after the magic line; expected 'layer_count blob_count'")
    count_lineno, count_line = lines[1]
    where = f"{path}:{count_lineno}"
    counts = count_line.split()
    if len(counts) != 2:
        raise CheckpointError(f"{where}: {count_line[:60]!r} is not 'layer_count blob_count'")
    layer_count = _parse_count(counts[0], where, "layer count")
    blob_count = _parse_count(counts[1], where, "blob count")
    layer_lines = lines[2:]
    if len(layer_lines) != layer_count:  # checked first: the header alone never sizes anything
        raise CheckpointError(f"{path}: header declares {layer_count} layers but the file has {len(layer_lines)}")

    layers = [_parse_layer(line, f"{path}:{lineno}") for lineno, line in layer_lines]
    _check_single_producers(layers, path)
    n_blobs = sum(len(layer.outputs) for layer in layers)
    if n_blobs != blob_count:
        raise CheckpointError(f"{path}: header declares {blob_count} blobs but the layers produce {n_blobs}")
    return NcnnGraph(layers=layers, blob_count=blob_count, param_path=path)
