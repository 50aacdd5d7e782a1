"""The models of benchmarks.convnets: the CIFAR ResNet-20, torchvision's with random weights, their ONNX export and
netspec import, and the work timed (a training step of each engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import netspec
from benchmarks.model_graphs import torchvision_module

ROOT = Path(__file__).resolve().parent.parent
TRAIN = {"train-resnet20": 64, "train-digits-cnn": 32}


def torch_module():
    import torch

    return torch


def resnet20():
    """The classic CIFAR-10 ResNet-20 (He et al. 2016, section 4.2), with 1×1-conv shortcuts where the shape changes."""
    torch = torch_module()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, inputs: int, filters: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(filters)
            self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(filters)
            self.shortcut = nn.Sequential()
            if stride != 1 or inputs != filters:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(inputs, filters, 1, stride, bias=False), nn.BatchNorm2d(filters)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    class ResNet20(nn.Module):
        def __init__(self, classes: int = 10):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            blocks, inputs = [], 16
            for filters, stride in ((16, 1), (32, 2), (64, 2)):
                for index in range(3):
                    blocks.append(Block(inputs, filters, stride if index == 0 else 1))
                    inputs = filters
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            y = self.blocks(torch.relu(self.bn(self.conv(x))))
            return self.fc(torch.flatten(self.pool(y), 1))

    return ResNet20()


def torch_model(name: str):
    """`name` (torchvision's or resnet20) with seeded random weights and random batch-norm statistics, in eval mode."""
    torch = torch_module()
    torch.manual_seed(0)
    model = resnet20() if name == "resnet20" else getattr(torchvision_module().models, name)(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # a fresh batch norm is an identity: it would hide a mistake
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def side(name: str) -> int:
    return 32 if name == "resnet20" else 224


def export(model, name: str, folder: Path) -> tuple[Path, Path]:
    """The model as ONNX (batch norms kept, the batch left open) and as the spec netspec imports from it."""
    from benchmarks.model_graphs import export_keeping_batch_norms
    from netspec.interop.importer import import_model

    onnx_path, spec = folder / f"{name}.onnx", folder / f"{name}.yaml"
    export_keeping_batch_norms(model, onnx_path, side(name))
    import_model(onnx_path, spec, max_params=200_000_000)
    return onnx_path, spec


def session(path: Path, threads: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads == "1":
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def images(batch: int, size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def relative(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


def digits_torch(network: netspec.Network):
    """specs/digits-cnn.yaml written in PyTorch, with the network's starting weights."""
    torch = torch_module()
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(256, 10),
    )
    layers = {layer.name: layer.params for layer in network.layers}
    with torch.no_grad():
        for module, name in ((model[0], "conv1"), (model[3], "conv2"), (model[8], "output")):
            module.weight.copy_(torch.from_numpy(layers[name]["weights"]))
            module.bias.copy_(torch.from_numpy(layers[name]["bias"]))
    return model


def training_setup(case: str, folder: Path):
    """(netspec network, PyTorch model, x, y, learning rate) for a training case."""
    torch = torch_module()
    batch = TRAIN[case]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, batch)
    if case == "train-resnet20":
        model = torch_model("resnet20")
        spec = folder / "resnet20.yaml"
        if not spec.exists():
            export(model, "resnet20", folder)
        network = netspec.load(spec)
        x = images(batch, 32)
        return network, model, x, y, 0.001
    network = netspec.load(ROOT / "specs" / "digits-cnn.yaml")
    x = rng.random((batch, 1, 8, 8), dtype=np.float32)
    torch.manual_seed(0)
    return network, digits_torch(network), x, y, 0.002


def netspec_step(network: netspec.Network, x: np.ndarray, y: np.ndarray, rate: float, threads: str):
    """One call of fit's epoch over one batch: forward, backward and Adam, as `netspec train` runs a step."""
    from netspec import threads as blas
    from netspec.spec import Training
    from netspec.train.fit import _epoch, _optimizer, logits_of

    options = Training(batch_size=len(x), learning_rate=rate, val_split=0, seed=0)
    params = [layer.params for layer in network.layers]
    optimizer = _optimizer(options, params, [layer.kind.decayed for layer in network.layers])
    scorer, order, noise = logits_of(network), np.arange(len(x)), np.random.default_rng(0)
    limit = 1 if threads == "1" else network.threads_for(len(x))

    def step():
        with blas.limited(limit):
            return _epoch(scorer, x, y, order, options, optimizer, None, noise)

    return step


def torch_step(model, x: np.ndarray, y: np.ndarray, rate: float):
    torch = torch_module()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(tx), ty)
        loss.backward()
        optimizer.step()
        return loss

    return step
