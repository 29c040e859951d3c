"""What one server is allowed to do: its limits, its queue and its token, fixed at start."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..devices import AUTO

#: Uploads above this many MiB are refused (413) unless ``--max-upload-mb`` says otherwise.
DEFAULT_MAX_UPLOAD_MB = 50
#: Decoded pixels per image: 16 MP (a 4K×4K photo). A ×4 result of it is 256 MP, about
#: 0.8 GB as uint8, so a few concurrent jobs stay well inside a small machine's memory;
#: ``litesr upscale``'s 200 MP default would let one request ask for ~10 GB.
DEFAULT_MAX_PIXELS = 16_000_000
#: Jobs admitted at once (the one running on the device plus those waiting for it).
DEFAULT_QUEUE = 4
#: The page's and the API's precision: measured per model (:mod:`litesr.precision`).
DEFAULT_PRECISION = AUTO


@dataclass(frozen=True)
class ServeConfig:
    """Limits and access of one server.

    ``queue`` counts every admitted job, the running one included: with ``queue=4`` a fifth
    simultaneous request is answered 503 at once, before its upload is read. ``token``, when
    set, is required as ``Authorization: Bearer <token>`` by every ``/api`` route.
    ``temp_dir`` is where uploads and results live while a request runs (a private folder
    of the system's temp directory by default); the server removes what it wrote there.
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    queue: int = DEFAULT_QUEUE
    token: str | None = None
    temp_dir: Path | None = None
    default_precision: str = DEFAULT_PRECISION
