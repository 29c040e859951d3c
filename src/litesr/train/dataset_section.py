"""``datasets``: the training set and every validation/test set, checked as written.

Only the options are checked here (types, pairings of keys, scales the network serves);
whether the folders exist and pair up is checked when a run starts
(:mod:`.data_check`), before any iteration.
"""
from __future__ import annotations

from .options import DATASET_TYPES, DatasetOptions, NetworkOptions
from .sections import REQUIRED, Section, int_list, path_list
from .yaml_options import describe

__all__ = ["parse_datasets"]


def _is_phase(phase: str) -> bool:
    return phase in ("train", "val", "test") or phase.startswith(("val_", "test_"))


def parse_datasets(top: Section, scale: int, network: NetworkOptions) -> tuple[DatasetOptions, ...]:
    section = top.section("datasets")
    result = []
    for phase in list(section.data):
        if section.data[phase] is None:  # ``--set datasets.test_4=~`` drops a set the machine lacks
            section.take(phase)
            continue
        if not _is_phase(phase):
            section.fail(phase, "is not a dataset phase; use train, val, val_<name> or test_<name>")
        result.append(_parse_dataset(section.section(phase), phase, scale, network))
    section.done()
    return tuple(result)


def _parse_dataset(section: Section, phase: str, scale: int, network: NetworkOptions) -> DatasetOptions:
    is_train = phase == "train"
    type_name = section.choice("type", DATASET_TYPES, REQUIRED)
    name = section.str("name", phase)
    dataroot_gt = path_list(section, "dataroot_gt")
    dataroot_lq = path_list(section, "dataroot_lq")
    scales = int_list(section, "scales", minimum=1) or (scale,)
    if len(set(scales)) != len(scales):
        section.fail("scales", f"lists a scale twice: {list(scales)}")
    for value in scales:
        if value not in network.scales:
            served = ", ".join(f"×{s}" for s in network.scales)
            section.fail("scales", f"has ×{value} but the {network.type} network serves {served}")

    if type_name == "SingleImageDataset":
        if is_train:
            section.fail("type", "SingleImageDataset has no ground truth to train on; use PairedImageDataset "
                                 "or HRImageDataset")
        if dataroot_lq is None:
            section.fail("dataroot_lq", "is required for a SingleImageDataset (its LR images)")
    else:
        if dataroot_gt is None:
            section.fail("dataroot_gt", f"is required for a {type_name}")
        if type_name == "HRImageDataset" and dataroot_lq is not None:
            section.fail("dataroot_lq", "is not used by HRImageDataset, which makes LR on the fly; "
                                        "use PairedImageDataset for stored LR images")
        if dataroot_lq is not None and len(dataroot_lq) != len(dataroot_gt):
            section.fail("dataroot_lq", f"lists {len(dataroot_lq)} folders but dataroot_gt lists "
                                        f"{len(dataroot_gt)}; they must pair up")
        if dataroot_lq is not None and len(scales) > 1:
            section.fail("dataroot_lq", "holds LR images of one scale, so scales must list one scale; "
                                        "drop dataroot_lq to make LR on the fly")

    filename_tmpl = section.str("filename_tmpl", "{}")
    if "{}" not in filename_tmpl:
        section.fail("filename_tmpl", f"must contain '{{}}' (where the HR file name goes), got {filename_tmpl!r}")
    backend = section.section("io_backend")
    io_backend = backend.choice("type", ("disk", "lmdb"), "disk")
    backend.done()

    gt_size = section.int("gt_size", minimum=1)
    if is_train and type_name != "SingleImageDataset":
        if gt_size is None:
            section.fail("gt_size", "is required for training (the HR patch size)")
        for value in scales:
            if gt_size % value:
                section.fail("gt_size", f"must be divisible by every scale, but {gt_size} is not divisible by {value}")
    batch_size = section.int("batch_size_per_gpu", REQUIRED if is_train else 1, minimum=1)
    prefetch_mode = section.take("prefetch_mode")
    if isinstance(prefetch_mode, str) and prefetch_mode.lower() == "cuda":
        section.ctx.warn(section.key("prefetch_mode"),
                         f"{section.key('prefetch_mode')}: 'cuda' prefetching is not supported; ignored")
        prefetch_mode = None
    elif prefetch_mode is not None:
        if not isinstance(prefetch_mode, str) or prefetch_mode.lower() != "cpu":
            section.fail("prefetch_mode", f"must be null, cpu or cuda, got {describe(prefetch_mode)}")
        prefetch_mode = "cpu"
    options = DatasetOptions(
        phase=phase, name=name, type=type_name, scales=scales, dataroot_gt=dataroot_gt, dataroot_lq=dataroot_lq,
        filename_tmpl=filename_tmpl, io_backend=io_backend, gt_size=gt_size,
        use_hflip=section.bool("use_hflip", False), use_rot=section.bool("use_rot", False),
        use_shuffle=section.bool("use_shuffle", is_train),
        batch_size_per_gpu=batch_size,
        num_worker_per_gpu=section.int("num_worker_per_gpu", 0, minimum=0),
        dataset_enlarge_ratio=section.int("dataset_enlarge_ratio", 1, minimum=1),
        pin_memory=section.bool("pin_memory", False), prefetch_mode=prefetch_mode,
        num_prefetch_queue=section.int("num_prefetch_queue", 1, minimum=1),
    )
    section.done()
    return options
