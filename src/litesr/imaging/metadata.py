"""EXIF orientation and ICC profiles: read from users' files, applied, checked and carried over.

Phones store photos sideways with an EXIF orientation tag; the pixels are turned upright on
reading (so models and tiles never see a rotated image) and the tag is reset on writing.
ICC profiles are kept when they are real profiles for the image's colour space; damaged
metadata becomes a note naming what was dropped.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from .pillow_guard import pillow_warnings


def notes_from_pillow(messages: list[str]) -> list[str]:
    """One note per distinct problem Pillow warned about while reading; EXIF damage in plain words."""
    distinct = list(dict.fromkeys(messages))
    exif = [message for message in distinct if "EXIF" in message]
    notes = [_corrupt_exif_note(exif, "its unreadable part was ignored")] if exif else []
    return notes + [f"the decoder warned: {message}" for message in distinct if "EXIF" not in message]


_ORIENTATION_TAG = 0x0112


_EXIF_PREFIX = b"Exif\x00\x00"

#: Every ICC profile starts with a 128-byte header.
_ICC_HEADER_BYTES = 128


def read_exif(im: Image.Image, notes: list[str]) -> tuple[int, bytes | None]:
    """The EXIF orientation and the EXIF block with that tag consumed (it is applied to the pixels).

    Unparseable EXIF must not cost the user their image: it is dropped with a note.  A
    block Pillow parses only in part ("Corrupt EXIF data", noted by :func:`read_image`
    from Pillow's warning) is re-serialised from its readable tags, so the damaged bytes
    are not copied to the output.
    """
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - any EXIF parser failure means "no usable EXIF"
        notes.append("the EXIF metadata is unreadable; it was ignored (orientation not applied)")
        return 1, None
    raw = _normalise_exif(im.info.get("exif"))
    if _ORIENTATION_TAG in exif or (raw is not None and _exif_is_damaged(raw)):
        orientation = _orientation_value(exif.pop(_ORIENTATION_TAG, 1))
        return orientation, _normalise_exif(exif.tobytes()) if len(exif) else None
    return 1, raw


def _parse_exif(raw: bytes) -> tuple[Image.Exif, list[str]]:
    """Parse an EXIF block; also return what Pillow complained about (empty when sound).

    Raises whatever Pillow's parser raises when nothing at all is usable.
    """
    parsed = Image.Exif()
    with pillow_warnings() as problems:
        parsed.load(raw)
    return parsed, problems


def _exif_is_damaged(raw: bytes) -> bool:
    try:
        return bool(_parse_exif(raw)[1])
    except Exception:  # noqa: BLE001 - unparseable is damaged
        return True


def _corrupt_exif_note(problems: list[str], outcome: str) -> str:
    """The one wording for EXIF that Pillow could read only in part."""
    return f"the EXIF metadata is corrupt ({'; '.join(dict.fromkeys(problems))}); {outcome}"


def _orientation_value(tag: object) -> int:
    """EXIF orientation 1–8; anything malformed means "as stored" (1)."""
    return tag if isinstance(tag, int) and 1 <= tag <= 8 else 1


def _normalise_exif(exif: bytes | None) -> bytes | None:
    """Give EXIF one spelling (with the APP1 ``Exif\\0\\0`` prefix), None when absent."""
    if not exif:
        return None
    return exif if exif.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + exif


def embedded_icc_profile(im: Image.Image, notes: list[str]) -> bytes | None:
    """The file's ICC profile if it is one that can be carried to the output, else None with a note."""
    profile = im.info.get("icc_profile") or None
    if profile is None:
        return None
    problem = _icc_problem(profile)
    if problem is not None:
        notes.append(f"the embedded ICC profile {problem}; it was ignored")
        return None
    if _icc_colour_space(profile) == b"CMYK":
        notes.append("the embedded CMYK colour profile was dropped (the image is now RGB)")
        return None  # it describes the CMYK numbers we no longer have
    return profile


def orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W[×C] array, exactly as exif_transpose does."""
    transforms: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    transform = transforms.get(orientation)
    return arr if transform is None else np.ascontiguousarray(transform(arr))


def _icc_problem(profile: bytes) -> str | None:
    """Why ``profile`` is not a usable ICC profile, as a phrase, or None if it looks valid.

    Checked from the 128-byte header alone: long enough for one, and carrying the ``acsp``
    signature every ICC profile has at byte 36.
    """
    if len(profile) < _ICC_HEADER_BYTES or profile[36:40] != b"acsp":
        return f"is invalid ({len(profile)} bytes, not an ICC profile)"
    return None


def _icc_colour_space(profile: bytes) -> bytes:
    """The data colour space from a valid ICC header (``b'RGB '``, ``b'GRAY'``, ``b'CMYK'``…)."""
    return bytes(profile[16:20])


# --------------------------------------------------------------------------- writing


def icc_for_output(profile: bytes | None, colour: np.ndarray, notes: list[str]) -> bytes | None:
    """Keep the profile only if it is valid and describes the channels being written (gray vs RGB)."""
    if not profile:
        return None
    problem = _icc_problem(profile)
    if problem is not None:
        notes.append(f"the ICC profile {problem}; it was not written")
        return None
    expected = b"GRAY" if colour.ndim == 2 else b"RGB "
    space = _icc_colour_space(profile)
    if space != expected:
        kind = "grayscale" if colour.ndim == 2 else "RGB"
        described = space.decode("latin-1").strip() or "unknown"
        notes.append(f"the ICC profile is for {described} data, which does not fit a {kind} image; it was not written")
        return None
    return profile


def exif_with_upright_orientation(exif: bytes | None, notes: list[str]) -> bytes | None:
    """Re-serialise EXIF with orientation 1: written pixels are already upright.

    A block Pillow parses only in part is written as its readable tags (as
    :func:`read_image` keeps it), with a note instead of Pillow's file-less warning.
    """
    if not exif:
        return None
    try:
        parsed, problems = _parse_exif(exif)
    except Exception:  # noqa: BLE001 - any parser failure means the block is unusable
        notes.append("the EXIF metadata could not be parsed and was not written")
        return None
    if problems:
        notes.append(_corrupt_exif_note(problems, "only its readable tags were written"))
    elif _ORIENTATION_TAG not in parsed:
        return exif
    if _ORIENTATION_TAG in parsed:
        parsed[_ORIENTATION_TAG] = 1
    return parsed.tobytes() if len(parsed) else None
