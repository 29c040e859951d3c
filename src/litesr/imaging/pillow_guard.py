"""Pillow's process-wide switches held at LiteSR's values, and its warnings collected.

Pillow guards decompression bombs with a global pixel limit and reports damaged metadata as
warnings that name no file. Reading and writing hold its globals under one lock while they
are set to LiteSR's limit, and collect its warnings so the caller can attach them to a file.
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator

from PIL import Image, ImageFile


#: Where Pillow's modules live: warnings raised from there are Pillow's (see pillow_warnings).
_PILLOW_PACKAGE_DIR = os.path.dirname(Image.__file__) + os.sep

#: Pillow's safety switches and the warnings filters are process-wide globals; reads and
#: writes hold this lock while they are set to LiteSR's values so concurrent calls
#: (threads) cannot observe or undo each other's.
_PILLOW_GLOBALS_LOCK = threading.RLock()


@contextlib.contextmanager
def pillow_guards() -> Iterator[None]:
    """Make truncated files fail and put the size limit under LiteSR's control.

    ``LOAD_TRUNCATED_IMAGES`` is forced off because a half-downloaded photo must not be
    upscaled into a result with a gray bottom half.  ``MAX_IMAGE_PIXELS`` starts
    disabled so that the open itself never refuses: :func:`_check_pixel_limit` runs right
    after it with a message that gives the size and how to raise the limit; then
    :func:`hold_pillow_to_limit` sets it for the decoding.  Both are restored afterwards.
    """
    with _PILLOW_GLOBALS_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def hold_pillow_to_limit(max_pixels: int) -> None:
    """From now on, anything Pillow allocates from sizes inside the file obeys ``max_pixels``.

    Pillow checks ``MAX_IMAGE_PIXELS`` wherever a plugin allocates from a size it found
    past the main header; it warns above the limit (an error under
    :func:`pillow_warnings`) and raises above twice it.  Only valid inside
    :func:`pillow_guards`, which restores the global.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels


@contextlib.contextmanager
def pillow_warnings() -> Iterator[list[str]]:
    """Collect what Pillow warns inside the block; the list is filled when the block exits.

    Pillow reports damaged metadata ("Corrupt EXIF data.  Expecting to read 12 bytes…")
    through :mod:`warnings`, without naming the file; a batch run would print it out of
    context.  Its messages are returned (whitespace tidied) for the caller to turn into
    notes on the image; other libraries' warnings are passed on unchanged.  Pillow's
    :class:`~PIL.Image.DecompressionBombWarning` is raised instead: it means a plugin is
    about to allocate more pixels than the limit allows.

    The warnings machinery is process-wide, like Pillow's switches, so this holds the
    same lock: two threads saving and restoring the filters out of order would leave
    them changed for good.
    """
    messages: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with _PILLOW_GLOBALS_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield messages
    finally:
        for warning in caught:
            if warning.filename.startswith(_PILLOW_PACKAGE_DIR):
                messages.append(" ".join(str(warning.message).split()))
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
