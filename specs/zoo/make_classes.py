"""Write imagenet-classes.txt, ImageNet's 1,000 class labels one a line, from torchvision's bundled list.

    python specs/zoo/make_classes.py        # on a machine with torchvision; nothing is downloaded

The labels are torchvision's `torchvision.models._meta._IMAGENET_CATEGORIES`, in the order of the
scores of its ImageNet models (line n + 1 is score n), so the zoo's specs name their classes as
torchvision's weights were trained. That list is already free of repeats: the two ImageNet synsets
that WordNet calls the same are named apart there ('crane bird' at index 134, the machine 'crane' at
517; 'maillot' at 638, 'maillot tank suit' at 639), and 'Cardigan' (264, the corgi) and 'cardigan'
(474, the sweater) differ in case, which netspec's labels keep. The labels are written as they are;
should a later torchvision repeat one, this script stops and names the repeats rather than writing a
file netspec would refuse (a renaming would have to be chosen, and said here, by a person).
"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent / "imagenet-classes.txt"


def torchvision_categories() -> list[str]:
    """torchvision's ImageNet labels, importing torchvision even where its C++ operators are absent."""
    try:
        meta = importlib.import_module("torchvision.models._meta")
    except RuntimeError:  # a CUDA build of torchvision on a CPU torch: "operator torchvision::nms does not exist"
        import torch

        global _LIBRARY  # torchvision registers Python kernels for these two at import; they must stay defined
        _LIBRARY = torch.library.Library("torchvision", "DEF")
        _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
            del sys.modules[name]
        meta = importlib.import_module("torchvision.models._meta")
    return list(meta._IMAGENET_CATEGORIES)


def checked(labels: list[str]) -> list[str]:
    """The labels, if they make a classes file netspec reads back as they are; else SystemExit saying why."""
    if len(labels) != 1000:
        raise SystemExit(f"torchvision lists {len(labels)} ImageNet labels, not 1,000")
    repeated = {label: count for label, count in Counter(labels).items() if count > 1}
    if repeated:
        where = "; ".join(f"{label!r} at {[i for i, x in enumerate(labels) if x == label]}" for label in repeated)
        raise SystemExit(f"torchvision's labels repeat ({where}); choose names that tell them apart")
    odd = [label for label in labels if not label or label != label.strip() or not label.isprintable()]
    if odd:
        raise SystemExit(f"labels netspec would read otherwise (blank, spaces around, control characters): {odd}")
    return labels


def main() -> None:
    labels = checked(torchvision_categories())
    OUT.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    print(f"wrote {len(labels):,} labels to {OUT}")


if __name__ == "__main__":
    main()
