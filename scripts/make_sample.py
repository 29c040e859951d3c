"""Generate samples/sample.png, the image the README's first command upscales.

The project draws its own sample so that no third-party image (and no licence question)
ships with it: a small synthetic scene with smooth gradients, hard edges, fine stripes and
text — the structures on which super-resolution models visibly differ. It is drawn at 4×
and reduced with LiteSR's MATLAB-compatible bicubic, like the LR images of SR benchmarks.

    python scripts/make_sample.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from litesr.imaging.resize import imresize

SIZE = 640  # drawn size; the sample is a quarter of it
OUTPUT = Path(__file__).resolve().parents[1] / "samples" / "sample.png"


def draw_scene() -> Image.Image:
    rows = np.linspace(0.0, 1.0, SIZE)[:, None]
    sky = np.stack([90 + 120 * rows, 140 + 90 * rows, 230 - 40 * rows], axis=-1) * np.ones((1, SIZE, 1))
    image = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((420, 60, 560, 200), fill=(255, 214, 90), outline=(250, 160, 40), width=6)
    draw.polygon([(0, 420), (160, 300), (330, 410), (480, 330), (640, 430), (640, 640), (0, 640)], fill=(60, 120, 70))
    for index in range(24):  # fine stripes, narrowing: aliasing shows at once
        x = 20 + index * (6 + index // 3)
        draw.rectangle((x, 470, x + 2 + index // 8, 620), fill=(235, 235, 225))
    for y in range(40, 240, 16):  # a checkerboard of sharp squares
        for x in range(40, 240, 16):
            if (x + y) // 16 % 2:
                draw.rectangle((x, y, x + 15, y + 15), fill=(30, 30, 40))
    font = ImageFont.load_default(size=72)
    draw.text((260, 500), "LiteSR", fill=(255, 255, 255), font=font, stroke_width=3, stroke_fill=(20, 20, 20))
    return image


def main() -> None:
    small = imresize(np.asarray(draw_scene()), 0.25)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).save(OUTPUT, optimize=True)
    print(f"wrote {OUTPUT} ({small.shape[1]}×{small.shape[0]})")


if __name__ == "__main__":
    main()
