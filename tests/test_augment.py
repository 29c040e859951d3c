"""Paired random crop and flip/rotate augmentation (litesr.data.augment)."""
from __future__ import annotations

import numpy as np
import pytest

from litesr.data.augment import AugmentOps, augment, paired_random_crop, random_crop_position
from litesr.data.files import DataError
from litesr.errors import LiteSRError


def coords(h: int, w: int, tag: int) -> np.ndarray:
    """H×W×3 uint8 image whose pixel (y, x) is (y, x, tag): positions can be read back."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.full_like(yy, tag)], axis=-1).astype(np.uint8)


def test_data_error_is_a_litesr_error():
    assert issubclass(DataError, LiteSRError)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_crop_is_aligned_and_covers_every_position(scale):
    lq = coords(20, 25, 1)
    gt = coords(20 * scale, 25 * scale, 2)
    gt_size = 8 * scale
    tops, lefts = set(), set()
    for seed in range(300):
        gt_p, lq_p = paired_random_crop(gt, lq, gt_size, scale, np.random.default_rng(seed))
        assert lq_p.shape == (8, 8, 3) and gt_p.shape == (gt_size, gt_size, 3)
        top, left = int(lq_p[0, 0, 0]), int(lq_p[0, 0, 1])
        tops.add(top)
        lefts.add(left)
        # the whole LR patch is the window at (top, left), the HR one at (s*top, s*left)
        np.testing.assert_array_equal(lq_p, lq[top : top + 8, left : left + 8])
        np.testing.assert_array_equal(
            gt_p, gt[scale * top : scale * top + gt_size, scale * left : scale * left + gt_size]
        )
    assert tops == set(range(0, 20 - 8 + 1)) and lefts == set(range(0, 25 - 8 + 1))


def test_crop_outputs_are_fresh_contiguous_copies():
    lq = coords(8, 8, 1)
    gt = coords(16, 16, 2)
    gt_p, lq_p = paired_random_crop(gt, lq, 16, 2, np.random.default_rng(0))  # full image
    assert gt_p.flags.c_contiguous and lq_p.flags.c_contiguous
    assert not np.shares_memory(gt_p, gt) and not np.shares_memory(lq_p, lq)


def test_crop_errors_name_the_file():
    lq, gt = coords(10, 12, 1), coords(40, 48, 2)
    with pytest.raises(DataError, match=r"too small.*t7\.png|t7\.png.*too small"):
        paired_random_crop(gt, lq, 48, 4, np.random.default_rng(0), name="t7.png")
    with pytest.raises(DataError, match="not ×4 of each other"):
        paired_random_crop(coords(41, 48, 2), lq, 16, 4, np.random.default_rng(0), name="x.png")
    with pytest.raises(DataError, match="not a multiple"):
        paired_random_crop(gt, lq, 18, 4, np.random.default_rng(0))
    with pytest.raises(DataError, match="too small"):
        random_crop_position((5, 100), 6, np.random.default_rng(0))


def test_crop_is_reproducible_given_the_generator():
    lq, gt = coords(30, 30, 1), coords(60, 60, 2)
    a = paired_random_crop(gt, lq, 20, 2, np.random.default_rng(123))
    b = paired_random_crop(gt, lq, 20, 2, np.random.default_rng(123))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_augment_is_identical_on_lr_and_hr():
    """HR = nearest-neighbour ×3 of LR stays so after augmenting both: same geometry."""
    rng0 = np.random.default_rng(5)
    lq = rng0.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    gt = np.repeat(np.repeat(lq, 3, axis=0), 3, axis=1)
    seen = set()
    for seed in range(80):
        rng = np.random.default_rng(seed)
        ops = AugmentOps.draw(np.random.default_rng(seed))
        seen.add((ops.hflip, ops.vflip, ops.transpose))
        lq_a, gt_a = augment([lq, gt], rng)
        np.testing.assert_array_equal(gt_a, np.repeat(np.repeat(lq_a, 3, axis=0), 3, axis=1))
        np.testing.assert_array_equal(lq_a, ops.apply(lq))
        assert lq_a.flags.c_contiguous and gt_a.flags.c_contiguous
    assert len(seen) == 8  # all symmetries of the square occur


def test_augment_ops_match_basicsr_definitions():
    img = coords(4, 6, 0)
    np.testing.assert_array_equal(AugmentOps(hflip=True).apply(img), img[:, ::-1])
    np.testing.assert_array_equal(AugmentOps(vflip=True).apply(img), img[::-1])
    np.testing.assert_array_equal(AugmentOps(transpose=True).apply(img), img.transpose(1, 0, 2))
    both = AugmentOps(True, True, True).apply(img)
    np.testing.assert_array_equal(both, img[::-1, ::-1].transpose(1, 0, 2))
    same = AugmentOps().apply(img)
    np.testing.assert_array_equal(same, img)
    assert not np.shares_memory(same, img)


def test_augment_probabilities_and_disabling():
    rng = np.random.default_rng(0)
    draws = [AugmentOps.draw(rng) for _ in range(4000)]
    for field in ("hflip", "vflip", "transpose"):
        frac = np.mean([getattr(d, field) for d in draws])
        assert 0.46 < frac < 0.54, (field, frac)
    rng = np.random.default_rng(0)
    assert all(AugmentOps.draw(rng, hflip=False, rotation=False) == AugmentOps() for _ in range(50))
    rng = np.random.default_rng(0)
    only_h = [AugmentOps.draw(rng, rotation=False) for _ in range(50)]
    assert not any(d.vflip or d.transpose for d in only_h) and any(d.hflip for d in only_h)
