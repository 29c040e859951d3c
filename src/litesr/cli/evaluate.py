"""``litesr eval``: PSNR/SSIM on benchmark sets (filled in by the evaluation work)."""
from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Placeholder until the evaluation command lands; registers nothing."""
