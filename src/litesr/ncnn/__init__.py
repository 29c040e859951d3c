"""Reading ncnn models without ncnn, and turning SPAN-shaped ones into SPAN state dicts.

* :mod:`.graph`       the in-memory model (:class:`NcnnGraph` of :class:`NcnnLayer`)
* :mod:`.param`       the ``.param`` text parser
* :mod:`.weights`     the ``.bin`` weights reader, and :func:`read_ncnn` for a whole model
* :mod:`.span_walker` blob-following queries the SPAN converter asks of a graph
* :mod:`.span`        the SPAN converter (ncnn graph → official deploy state dict)

Every problem with a file raises a :class:`~litesr.errors.CheckpointError` naming it.
Finding the ncnn models an installed package ships is the zoo's job
(:mod:`litesr.zoo.ncnn_package`), not this package's.
"""
from __future__ import annotations

from .graph import NCNN_MAGIC, NcnnGraph, NcnnLayer
from .param import read_ncnn_param
from .span import load_ncnn_span, span_state_dict_from_ncnn
from .span_walker import NotSpanGraphError
from .weights import read_ncnn

__all__ = [
    "NCNN_MAGIC",
    "NcnnGraph",
    "NcnnLayer",
    "NotSpanGraphError",
    "load_ncnn_span",
    "read_ncnn",
    "read_ncnn_param",
    "span_state_dict_from_ncnn",
]
