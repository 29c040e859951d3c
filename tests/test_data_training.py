"""Training data: in-memory images, on-the-fly LR, patch dataset, samplers, loader."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from PIL import Image

from litesr.data.dataset import ItemKey, SRTrainDataset, collate_sr
from litesr.data.files import DataError
from litesr.data.image_store import TrainingImages
from litesr.data.loader import build_train_loader, cycle
from litesr.data.samplers import MultiScaleBatchSampler, ScaleTaggedSampler
from litesr.imaging.resize import imresize, make_lr, modcrop


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def noise(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def coords(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.zeros_like(yy)], axis=-1).astype(np.uint8)


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    root = tmp_path / "hr"
    save(root / "b.png", noise(50, 61, 1))
    save(root / "a.png", noise(40, 45, 2))
    save(root / "sub" / "c.bmp", noise(37, 52, 3))
    save(root / "gray.png", noise(44, 44, 4, channels=1))
    (root / "notes.txt").write_text("not an image")
    save(root / ".hidden.png", noise(8, 8, 5))
    return root


def quiet(**kw):
    return dict(progress=False, **kw)


# ------------------------------------------------------------------ TrainingImages


def test_loads_sorted_recursive_rgb(hr_folder):
    images = TrainingImages(hr_folder, **quiet())
    assert images.keys == ["a", "b", "gray", "sub/c"]
    assert all(images.hr(i).dtype == np.uint8 and images.hr(i).shape[2] == 3 for i in range(len(images)))
    gray = images.hr(2)
    assert gray.shape == (44, 44, 3) and (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    np.testing.assert_array_equal(images.hr(0), noise(40, 45, 2))


def test_multiple_roots_and_made_lr_is_matlab_imresize(hr_folder, tmp_path):
    other = tmp_path / "other"
    save(other / "z.png", noise(33, 30, 9))
    images = TrainingImages([hr_folder, other], scales=[2, 3], precompute_lr=True, **quiet())
    assert len(images) == 5 and images.keys[-1] == "z"
    for i in range(len(images)):
        for s in (2, 3, 4):  # 4 is made lazily
            lr = images.lq(i, s)
            ref = imresize(np.ascontiguousarray(modcrop(images.hr(i), s)), scale=1 / s)
            np.testing.assert_array_equal(lr, ref)
            assert images.gt(i, s).shape[:2] == (lr.shape[0] * s, lr.shape[1] * s)
            assert images.lq_shape(i, s) == lr.shape[:2]
    assert images.lq(0, 4) is images.lq(0, 4)  # cached


def test_t91_x4_lr_matches_imresize_exactly():
    folder = shared_path("data", "train", "T91")
    images = TrainingImages(folder, **quiet())  # LR made lazily: only what is checked
    assert len(images) == 91 and images.keys[:3] == ["t1", "t10", "t11"]
    for i in (0, 17, 45, 90):
        hr = np.asarray(Image.open(images.sources[i]).convert("RGB"))
        np.testing.assert_array_equal(images.hr(i), hr)
        ref = imresize(np.ascontiguousarray(hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]), scale=0.25)
        np.testing.assert_array_equal(images.lq(i, 4), ref)
    # a dataset item is a window of that LR, at the aligned position in the HR
    ds = SRTrainDataset(
        images, scales=[4], gt_size=64, use_hflip=False, use_rot=False, small_images="skip", precompute_lr=False
    )
    item = ds[ItemKey(3, 4, 0)]
    i = ds.image_ids[3]
    lq = (item["lq"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    gt = (item["gt"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    full_lr, full_hr = images.lq(i, 4), images.hr(i)
    hits = [
        (y, x)
        for y in range(full_lr.shape[0] - 15)
        for x in range(full_lr.shape[1] - 15)
        if (full_lr[y : y + 16, x : x + 16] == lq).all()
    ]
    assert len(hits) == 1
    y, x = hits[0]
    np.testing.assert_array_equal(gt, full_hr[4 * y : 4 * y + 64, 4 * x : 4 * x + 64])


def test_paired_lr_with_filename_template(tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR_bicubic" / "X4"
    for k, (h, w) in enumerate([(40, 48), (42, 37)]):  # 42×37 modcrops to 40×36
        hr = noise(h, w, k)
        save(hr_dir / f"{k:04d}.png", hr)
        save(lr_dir / f"{k:04d}x4.png", make_lr(hr, 4))
    images = TrainingImages(hr_dir, dataroot_lq=lr_dir, filename_tmpl="{}x4", scales=[4], **quiet())
    assert images.given_scales == {4}
    np.testing.assert_array_equal(images.lq(1, 4), make_lr(noise(42, 37, 1), 4))
    with pytest.raises(DataError, match="only"):
        images.lq(0, 2)
    with pytest.raises(DataError, match=r"dataroot_lq gives only ×\[4\]"):
        SRTrainDataset(images, scales=[2, 4], gt_size=8)


def test_paired_lr_errors(tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    save(hr_dir / "a.png", noise(40, 48, 0))
    save(lr_dir / "ax4.png", noise(11, 12, 0))  # should be 10×12
    with pytest.raises(DataError, match=r"LR .*ax4\.png is 12×11 but HR .*a\.png is 48×40.*12×10"):
        TrainingImages(hr_dir, dataroot_lq=lr_dir, filename_tmpl="{}x4", scales=[4], **quiet())
    with pytest.raises(DataError, match=r"no LR image for .*a\.png.*'\{\}_lr'"):
        TrainingImages(hr_dir, dataroot_lq=lr_dir, filename_tmpl="{}_lr", scales=[4], **quiet())
    save(lr_dir / "ax4.png", noise(10, 12, 0))
    save(lr_dir / "stray.png", noise(10, 12, 0))
    with pytest.raises(DataError, match="1 image.*no HR partner.*stray.png"):
        TrainingImages(hr_dir, dataroot_lq=lr_dir, filename_tmpl="{}x4", scales=[4], **quiet())
    with pytest.raises(DataError, match="holds one scale"):
        TrainingImages(hr_dir, dataroot_lq=lr_dir, filename_tmpl="{}x4", scales=[2, 4], **quiet())
    with pytest.raises(DataError, match="filename_tmpl"):
        TrainingImages(hr_dir, filename_tmpl="{0}{1}", **quiet())


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist: Path to your data.*placeholder"):
        TrainingImages("Path to your data", **quiet())
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(DataError, match=r"no dataroot_gt images in .*empty$"):
        TrainingImages(tmp_path / "empty", **quiet())
    lmdb_like = tmp_path / "x.lmdb"
    lmdb_like.mkdir()
    (lmdb_like / "data.mdb").write_bytes(b"")
    with pytest.raises(DataError, match="set io_backend to 'lmdb'"):
        TrainingImages(lmdb_like, **quiet())
    bad = tmp_path / "bad"
    save(bad / "ok.png", noise(20, 20, 0))
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"broken\.png"):
        TrainingImages(bad, **quiet())
    with pytest.raises(DataError, match="io_backend"):
        TrainingImages(bad, io_backend="ceph", **quiet())


# ------------------------------------------------------------------ SRTrainDataset


@pytest.fixture
def coord_images(tmp_path) -> TrainingImages:
    """Paired ×4 data whose pixels hold their coordinates: LR (y, x, 0), HR (Y, X, 0)."""
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    for k, (h, w) in enumerate([(24, 30), (20, 20), (31, 26)]):
        save(lr_dir / f"im{k}.png", coords(h, w))
        save(hr_dir / f"im{k}.png", coords(4 * h, 4 * w))
    return TrainingImages(hr_dir, dataroot_lq=lr_dir, scales=[4], **quiet())


def test_dataset_items_are_aligned_after_augmentation(coord_images):
    ds = SRTrainDataset(coord_images, scales=[4], gt_size=48, dataset_enlarge_ratio=5, seed=3)
    assert len(ds) == 15
    for index in range(len(ds)):
        item = ds[index]
        assert item["scale"] == 4
        assert item["lq"].shape == (3, 12, 12) and item["gt"].shape == (3, 48, 48)
        assert item["lq"].dtype == torch.float32 and item["lq"].is_contiguous()
        assert 0.0 <= float(item["gt"].min()) and float(item["gt"].max()) <= 1.0
        lq = (item["lq"][:2] * 255).round().long()  # (y, x) of each LR pixel
        gt = (item["gt"][:2] * 255).round().long()
        # every HR pixel lies in the 4×4 block of the LR pixel at the same patch position
        up = lq.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
        assert torch.equal(torch.div(gt, 4, rounding_mode="floor"), up)


def test_dataset_determinism(coord_images):
    ds = SRTrainDataset(coord_images, scales=[4], gt_size=32, dataset_enlarge_ratio=4, seed=7)
    again = SRTrainDataset(coord_images, scales=[4], gt_size=32, dataset_enlarge_ratio=4, seed=7)
    other_seed = SRTrainDataset(coord_images, scales=[4], gt_size=32, dataset_enlarge_ratio=4, seed=8)

    def fingerprint(d, key):
        item = d[key]
        return torch.cat([item["lq"].flatten(), item["gt"].flatten()])

    a = fingerprint(ds, ItemKey(2, 4, 0))
    assert torch.equal(a, fingerprint(again, ItemKey(2, 4, 0)))
    assert torch.equal(a, fingerprint(ds, (2, 4)))  # dataset epoch defaults to 0
    assert torch.equal(a, fingerprint(ds, 2))
    assert not torch.equal(a, fingerprint(ds, ItemKey(2, 4, 1)))  # new epoch, new crop
    assert not torch.equal(a, fingerprint(other_seed, ItemKey(2, 4, 0)))
    # enlarged copies of one image (2, 5, 8, 11 → image 2) get different patches
    copies = [fingerprint(ds, ItemKey(i, 4, 0)) for i in (2, 5, 8, 11)]
    assert all(not torch.equal(copies[0], c) for c in copies[1:])
    ds.set_epoch(1)
    assert torch.equal(fingerprint(ds, 2), fingerprint(ds, ItemKey(2, 4, 1)))


def test_dataset_patch_errors(coord_images):
    with pytest.raises(DataError, match=r"im1\.png is too small.*×4 LR is 20×20.*patch 24×24"):
        SRTrainDataset(coord_images, scales=[4], gt_size=96)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SRTrainDataset(coord_images, scales=[4], gt_size=96, small_images="skip")
    assert len(ds) == 2 and any("skipping 1 of 3" in str(w.message) for w in caught)
    with pytest.raises(DataError, match="no image .* large enough"):
        SRTrainDataset(coord_images, scales=[4], gt_size=400, small_images="skip")
    with pytest.raises(DataError, match="not a multiple of scale"):
        SRTrainDataset(coord_images, scales=[4], gt_size=30)
    with pytest.raises(DataError, match="exactly one of gt_size"):
        SRTrainDataset(coord_images, scales=[4])
    with pytest.raises(DataError, match=r"not one of this dataset's scales"):
        SRTrainDataset(coord_images, scales=[4], gt_size=16)[(0, 2)]
    with pytest.raises(IndexError):
        SRTrainDataset(coord_images, scales=[4], gt_size=16)[3]


@pytest.fixture
def made_images(tmp_path) -> TrainingImages:
    root = tmp_path / "hr"
    for k in range(7):
        save(root / f"{k}.png", noise(40 + k, 44 + 2 * k, k))
    return TrainingImages(root, **quiet())


def test_multiscale_dataset_shapes(made_images):
    ds = SRTrainDataset(made_images, scales=[2, 3, 4], gt_size=24)
    for s in (2, 3, 4):
        item = ds[(0, s)]
        assert item["lq"].shape == (3, 24 // s, 24 // s) and item["gt"].shape == (3, 24, 24)
    with pytest.raises(DataError, match=r"index it with \(index, scale\)"):
        ds[0]
    lq_ds = SRTrainDataset(made_images, scales=[2, 3, 4], lq_size=8)
    for s in (2, 3, 4):
        assert lq_ds[(1, s)]["gt"].shape == (3, 8 * s, 8 * s)


# ------------------------------------------------------------------ samplers and loader


def test_multiscale_batch_sampler_single_scale_per_batch_and_ddp_split():
    n, bs, ws = 50, 4, 3
    per_rank = [list(MultiScaleBatchSampler(n, bs, [2, 3, 4], seed=1, rank=r, world_size=ws)) for r in range(ws)]
    lengths = {len(b) for b in per_rank}
    assert lengths == {len(MultiScaleBatchSampler(n, bs, [2, 3, 4], world_size=ws))} == {17 // 4}
    for batches in per_rank:
        for batch in batches:
            assert len(batch) == bs and len({k.scale for k in batch}) == 1
    # step k has the same scale on every rank
    scales = [[b[0].scale for b in batches] for batches in per_rank]
    assert scales[0] == scales[1] == scales[2]
    # without drop_last the ranks together cover every index, and each rank sees 17
    full = [
        [k.index for b in MultiScaleBatchSampler(n, bs, [2, 3, 4], seed=1, rank=r, world_size=ws, drop_last=False) for k in b]
        for r in range(ws)
    ]
    assert all(len(f) == 17 for f in full)
    assert set().union(*map(set, full)) == set(range(n))
    assert sum(map(len, full)) == 51  # one padding repeat, as DistributedSampler
    # balanced scales, reshuffled per epoch, reproducible
    sampler = MultiScaleBatchSampler(48, 4, [2, 3, 4], seed=0)
    e0 = list(sampler)
    assert sorted(b[0].scale for b in e0) == [2] * 4 + [3] * 4 + [4] * 4
    assert e0 == list(MultiScaleBatchSampler(48, 4, [2, 3, 4], seed=0))
    sampler.set_epoch(1)
    e1 = list(sampler)
    assert e1 != e0 and all(k.epoch == 1 for b in e1 for k in b)


def test_scale_tagged_sampler_ddp_split_covers_once():
    n, ws = 12, 4
    parts = [list(ScaleTaggedSampler(n, 3, seed=5, rank=r, world_size=ws)) for r in range(ws)]
    indices = sorted(k.index for p in parts for k in p)
    assert indices == list(range(n))
    assert all(k.scale == 3 and k.epoch == 0 for p in parts for k in p)
    with pytest.raises(DataError, match="rank"):
        ScaleTaggedSampler(n, 3, rank=4, world_size=4)


def test_loader_is_the_same_for_any_worker_count_and_epoch(made_images):
    """Per-item RNG: 0 workers and 2 persistent workers give identical batches, per epoch."""
    ds = SRTrainDataset(made_images, scales=[2], gt_size=16, dataset_enlarge_ratio=3, seed=11)

    def run(workers: int) -> list[torch.Tensor]:
        loader = build_train_loader(ds, 4, workers, seed=11)
        out = []
        batches = cycle(loader)
        for _ in range(2 * len(loader)):  # two epochs
            batch = next(batches)
            assert batch["scale"] == 2 and batch["lq"].shape == (4, 3, 8, 8)
            out.append(torch.cat([batch["lq"].flatten(), batch["gt"].flatten()]))
        assert loader.sampler.epoch == 1
        return out

    ref = run(0)
    n = len(ref) // 2
    assert not all(torch.equal(a, b) for a, b in zip(ref[:n], ref[n:]))  # epochs differ
    got = run(2)
    assert all(torch.equal(a, b) for a, b in zip(ref, got))


def test_multiscale_loader_and_ddp(made_images):
    ds = SRTrainDataset(made_images, scales=[2, 3, 4], gt_size=12, dataset_enlarge_ratio=6)  # 42 items
    seen = []
    for rank in range(2):
        loader = build_train_loader(ds, 5, 0, seed=2, rank=rank, world_size=2)
        assert len(loader) == 21 // 5
        for batch in loader:
            s = batch["scale"]
            assert batch["lq"].shape == (5, 3, 12 // s, 12 // s) and batch["gt"].shape == (5, 3, 12, 12)
            seen.append(s)
    assert set(seen) == {2, 3, 4}
    single = build_train_loader(ds, 5, 0, scales=[3])
    assert {b["scale"] for b in single} == {3}
    with pytest.raises(DataError, match="not among"):
        build_train_loader(ds, 5, 0, scales=[8])


def test_cycle_refuses_an_empty_loader(made_images):
    ds = SRTrainDataset(made_images, scales=[2], gt_size=16)  # 7 items
    with pytest.raises(DataError, match="no batches"):
        next(cycle(build_train_loader(ds, 8, 0)))


def test_collate_refuses_mixed_scales(made_images):
    ds = SRTrainDataset(made_images, scales=[2, 4], gt_size=16)
    with pytest.raises(DataError, match="mixes scales"):
        collate_sr([ds[(0, 2)], ds[(1, 4)]])
