"""The zoo's oracle: a spec of specs/zoo/ against torchvision's model of the same name, on the same photos.

For a model name (a spec's stem, torchvision's function): torchvision's model with seeded random weights,
its state dict saved as safetensors beside a copy of the spec that loads it by PyTorch's names, a few
generated photos of odd sizes, and the scores of both, each reading the photo files its own way
(netspec its spec's `image` input, torchvision its ImageNet transforms). tests/test_zoo.py runs the
small models; `python -m benchmarks.zoo` runs them all and times them.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ZOO_FOLDER = ROOT / "specs" / "zoo"
CLASSES_FILE = "imagenet-classes.txt"
TOLERANCE = 1e-4
"""Largest relative difference allowed between netspec's and torchvision's scores."""


@dataclass(frozen=True)
class ZooModel:
    """A zoo spec's row: torchvision's parameter count, and whether the tests reproduce it."""

    params: int
    """torchvision's count, sum(p.numel() for p in model.parameters()): batch norms' running statistics are
    buffers there, not parameters (netspec's summary counts them apart, as non-trainable)."""
    in_tests: bool
    """Small enough to be reproduced by every test run; the others only by `python -m benchmarks.zoo`."""
    interpolation: str = "bilinear"
    """The filter torchvision's own transforms for the model's weights resize with (`<Model>_Weights.transforms()`)."""


ZOO: dict[str, ZooModel] = {
    "resnet18": ZooModel(params=11_689_512, in_tests=True),
    "resnet50": ZooModel(params=25_557_032, in_tests=False),
    "mobilenet_v2": ZooModel(params=3_504_872, in_tests=True),
    "squeezenet1_1": ZooModel(params=1_235_496, in_tests=True),
    "efficientnet_b0": ZooModel(params=5_288_548, in_tests=True, interpolation="bicubic"),
}
"""Every spec of specs/zoo/, by stem; the stem is torchvision's function (torchvision.models.<stem>)."""


@dataclass(frozen=True)
class Comparison:
    """The two models' scores for the same photos, one row per photo."""

    netspec: np.ndarray
    torchvision: np.ndarray

    @property
    def relative(self) -> float:
        """The largest |netspec − torchvision| / |torchvision| over every score of every photo."""
        return float(np.max(np.abs(self.netspec - self.torchvision) / np.abs(self.torchvision)))


def torchvision_model(name: str, seed: int = 0):
    """torchvision's `name` in eval mode with seeded random weights, its batch norms' running statistics drawn
    too (positive variances), so that a mix-up of mean, variance, scale or shift shows in the scores."""
    import torch

    from benchmarks.model_graphs import randomised_batch_norms, torchvision_module

    torch.manual_seed(seed)
    return randomised_batch_norms(getattr(torchvision_module().models, name)(weights=None)).eval()


def temper(model, inputs) -> None:
    """Scale the last layer so that the logits of `inputs` spread by about 2, as a trained model's do.

    Random weights let the logits grow through tens of layers until softmax gives one class 1 and the others
    0 (or less than float32 holds), scores that would hide any difference. The last layer is the module
    torchvision's classifier ends with (a Linear, or SqueezeNet's 1×1 Conv2d before its ReLU and pooling,
    which a positive factor passes through).
    """
    import torch

    last = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    with torch.no_grad():
        factor = 2.0 / float(model(inputs).std())
        last.weight *= factor
        if last.bias is not None:
            last.bias *= factor


def photos(folder: Path, count: int = 3) -> list[Path]:
    """`count` generated photos of odd sizes, landscape and portrait, PNG and JPEG: smooth colour gradients with
    a pattern and some noise, so that resizing (which averages neighbours) has something to average."""
    from PIL import Image

    sizes = [(301, 227), (229, 383), (517, 263), (256, 256)]
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        width, height = sizes[index % len(sizes)]
        y, x = np.mgrid[0:height, 0:width] / max(width, height)
        pattern = np.sin(9 * x + 5 * y + index) * np.cos(7 * y - 3 * x)
        channels = [x, y, pattern * 0.5 + 0.5]
        pixels = np.stack(channels[index % 3 :] + channels[: index % 3], axis=-1) * 230
        pixels += rng.normal(0, 12, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
        path = folder / f"photo{index}.{'jpg' if index % 2 else 'png'}"
        image.save(path)
        paths.append(path)
    return paths


def torchvision_inputs(paths: list[Path], interpolation: str = "bilinear"):
    """The photos as torchvision's ImageNet models read them: shorter side 256 (resized with `interpolation`),
    centre 224, ImageNet's mean, std."""
    import torch
    from PIL import Image

    from benchmarks.model_graphs import torchvision_module

    transforms = torchvision_module().transforms
    preprocess = transforms.Compose(
        [
            transforms.Resize(256, transforms.InterpolationMode(interpolation)),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    batch = []
    for path in paths:
        with Image.open(path) as image:
            batch.append(preprocess(image.convert("RGB")))
    return torch.stack(batch)


def with_weights(name: str, model, folder: Path) -> Path:
    """specs/zoo/<name>.yaml copied into `folder` (with the classes file) and `model`'s state dict saved there as
    <name>.safetensors, the copy given the line docs/zoo.md tells users to add; the copy's path."""
    from safetensors.torch import save_file

    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, folder / f"{name}.safetensors")
    shutil.copy(ZOO_FOLDER / CLASSES_FILE, folder / CLASSES_FILE)
    text = (ZOO_FOLDER / f"{name}.yaml").read_text(encoding="utf-8")
    line = f"weights_file: {{file: {name}.safetensors, names: pytorch}}\n"
    text, found = re.subn(r"^classes:.*\n", lambda classes: classes[0] + line, text, count=1, flags=re.M)
    assert found == 1, f"specs/zoo/{name}.yaml has no top-level 'classes:' line to put weights_file after"
    spec = folder / f"{name}.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


@dataclass
class Prepared:
    """One zoo model ready to compare: netspec's network and torchvision's model with the same weights."""

    network: object
    """netspec.Network, loaded from the spec copy with its weights_file."""
    model: object
    """torchvision's model (torch.nn.Module), eval mode."""
    photos: list[Path]
    inputs: object
    """torch.Tensor: the photos as torchvision's transforms give them, (photos, 3, 224, 224)."""

    def compare(self) -> Comparison:
        import torch

        with torch.no_grad():
            expected = torch.softmax(self.model(self.inputs), dim=1).numpy()
        return Comparison(self.network.scores(self.photos), expected)


def prepare(name: str, folder: Path, count: int = 3) -> Prepared:
    """torchvision's `name` with random weights and netspec's spec loading them, in `folder`, with `count` photos."""
    import netspec

    model = torchvision_model(name)
    paths = photos(folder, count)
    inputs = torchvision_inputs(paths, ZOO[name].interpolation)
    temper(model, inputs)
    network = netspec.load(with_weights(name, model, folder))
    return Prepared(network, model, paths, inputs)


def torchvision_counts(name: str) -> tuple[int, int]:
    """torchvision's parameters, and its batch norms' running means and variances (the buffers netspec counts
    as non-trainable parameters; num_batches_tracked is a counter, not a parameter of either)."""
    model = torchvision_model(name)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for key, b in model.named_buffers() if key.endswith(("running_mean", "running_var")))
    return params, buffers
