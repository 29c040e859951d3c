"""Following blobs through an ncnn graph to find SPAN's layers by what they compute.

Converters name and order layers freely, and insert Split layers wherever a blob fans out;
the walker sees through Splits (every blob resolves to the one its data comes from) and
offers the questions the SPAN converter asks: who reads this blob, is this a SiLU, is this
convolution shaped like SPAN's. Graphs come from files, so the walker first checks the
structure it relies on (single outputs, Splits without cycles) and answers with a
:class:`NotSpanGraphError` naming the file rather than an IndexError or an endless loop.
"""
from __future__ import annotations

from ..errors import CheckpointError
from .graph import NcnnGraph, NcnnLayer


class NotSpanGraphError(CheckpointError):
    """An ncnn model that reads fine but does not compute SPAN (so it has no SPAN state dict)."""


class SpanWalker:
    """Blob-level queries on a graph, with every Split output resolved to its source blob."""

    def __init__(self, graph: NcnnGraph) -> None:
        self.graph = graph
        self._check_arity()
        self._source = self._resolve_splits()
        self._producer = {self.src(blob): layer for blob, layer in graph.producer().items() if layer.type != "Split"}
        self._consumers: dict[str, list[NcnnLayer]] = {}
        for blob, layers in graph.consumers().items():
            self._consumers.setdefault(self.src(blob), []).extend(x for x in layers if x.type != "Split")

    def fail(self, msg: str) -> NotSpanGraphError:
        return NotSpanGraphError(f"{self.graph.source}: not a SPAN graph: {msg}")

    def _check_arity(self) -> None:
        """Every layer but Split writes one blob, and a Split reads one: the walk relies on both."""
        for layer in self.graph.layers:
            if layer.type == "Split" and len(layer.inputs) != 1:
                raise self.fail(f"Split layer {layer.name!r} reads {len(layer.inputs)} blobs, expected one")
            if layer.type != "Split" and len(layer.outputs) != 1:
                raise self.fail(
                    f"{layer.type} layer {layer.name!r} writes {len(layer.outputs)} blobs; "
                    "in a SPAN graph every layer but Split writes exactly one"
                )

    def _resolve_splits(self) -> dict[str, str]:
        """Map each Split output to the blob its data comes from; Splits feeding each other in a ring have none."""
        alias = {out: layer.inputs[0] for layer in self.graph.layers if layer.type == "Split" for out in layer.outputs}
        resolved: dict[str, str] = {}
        for start in alias:
            chain: list[str] = []
            on_chain: set[str] = set()
            blob = start
            while blob in alias and blob not in resolved:
                if blob in on_chain:
                    ring = chain[chain.index(blob):]
                    raise self.fail(f"Split layers form a cycle through the blobs {' -> '.join(ring + [blob])}")
                chain.append(blob)
                on_chain.add(blob)
                blob = alias[blob]
            source = resolved.get(blob, blob)
            resolved.update((b, source) for b in chain)
        return resolved

    def src(self, blob: str) -> str:
        """The blob whose data ``blob`` carries (itself unless it is a Split output)."""
        return self._source.get(blob, blob)

    def output(self, layer: NcnnLayer) -> str:
        """The one blob a (non-Split) layer writes, resolved."""
        return self.src(layer.outputs[0])

    def consumers(self, blob: str, type_: str | None = None) -> list[NcnnLayer]:
        layers = self._consumers.get(self.src(blob), [])
        return [x for x in layers if type_ is None or x.type == type_]

    def only_consumer(self, blob: str, type_: str, what: str) -> NcnnLayer:
        found = self.consumers(blob, type_)
        if len(found) != 1:
            raise self.fail(f"expected exactly one {type_} reading {what} (blob {blob!r}), found {len(found)}")
        return found[0]

    def producer_of(self, blob: str) -> NcnnLayer | None:
        return self._producer.get(self.src(blob))

    def reads(self, layer: NcnnLayer, *blobs: str) -> bool:
        """Whether ``layer``'s inputs are exactly ``blobs`` (as sources, in any order)."""
        return {self.src(b) for b in layer.inputs} == {self.src(b) for b in blobs}

    def silu(self, blob: str, what: str) -> str:
        """Output blob of the SiLU applied to ``blob`` (a Swish layer, or Sigmoid·x)."""
        swish = self.consumers(blob, "Swish")
        if len(swish) == 1:
            return self.output(swish[0])
        for sig in self.consumers(blob, "Sigmoid"):
            for mul in self.consumers(self.output(sig), "BinaryOp"):
                if mul.p(0, 0) == 2 and self.reads(mul, blob, self.output(sig)):
                    return self.output(mul)
        raise self.fail(f"no SiLU (Swish) after {what}")

    def conv(self, layer: NcnnLayer, what: str, k: int, c_in: int | None, c_out: int | None) -> tuple[int, int]:
        """Check a Convolution is SPAN's k×k, stride 1, same-padded, ungrouped; returns (c_out, c_in)."""
        if layer.type != "Convolution":
            raise self.fail(f"{what} is a {layer.type}, expected a Convolution")
        kw = layer.p(1, 0)
        kh = layer.p(11, kw)
        dil_w = layer.p(2, 1)
        dil_h = layer.p(12, dil_w)
        st_w = layer.p(3, 1)
        st_h = layer.p(13, st_w)
        pl = layer.p(4, 0)
        pt, pr = layer.p(14, pl), layer.p(15, pl)
        pb = layer.p(16, pt)
        pad = k // 2
        if pl in (-233, -234) and pt == pl:  # SAME_UPPER/SAME_LOWER: pad k//2 at stride 1
            pl = pt = pr = pb = pad
        if (kw, kh) != (k, k) or (dil_w, dil_h, st_w, st_h) != (1, 1, 1, 1) or (pl, pt, pr, pb) != (pad,) * 4:
            raise self.fail(
                f"{what} ({layer.name}) is kernel {kw}x{kh}, dilation {dil_w}/{dil_h}, stride {st_w}/{st_h}, "
                f"pad {pl},{pt},{pr},{pb}; expected kernel {k}x{k}, stride 1, padding {pad}"
            )
        if layer.p(7, 1) != 1 or layer.p(9, 0) != 0:
            raise self.fail(f"{what} ({layer.name}) is grouped or has a fused activation")
        w = layer.weights.get("weight")
        if w is None or w.ndim != 4:
            raise self.fail(f"{what} ({layer.name}) has no weight of shape (out, in, k, k)")
        o, i = int(w.shape[0]), int(w.shape[1])
        if (c_out is not None and o != c_out) or (c_in is not None and i != c_in):
            raise self.fail(f"{what} ({layer.name}) maps {i}→{o} channels, expected {c_in}→{c_out}")
        return o, i
