"""The graphs benchmarks/onnx_models.py checks, made: torchvision's models with seeded random weights exported
to ONNX, and the onnx package's Caffe2 zoo graphs with random arrays in place of their constant fills."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

SIDE = 224
"""The images' side: the size the classic ImageNet classifiers read."""
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def torchvision_module():
    """torchvision, importable: its C++ operators are absent from this CPU build of torch, so declare the two
    that torchvision registers Python kernels for at import (the library must stay referenced)."""
    import torch

    global _TORCHVISION_LIBRARY
    if "_TORCHVISION_LIBRARY" not in globals():
        _TORCHVISION_LIBRARY = torch.library.Library("torchvision", "DEF")
        _TORCHVISION_LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision


def randomised_batch_norms(model):
    """`model` with its batch norms' running statistics, scales and shifts drawn at random (variances positive),
    so that a mix-up of mean, variance, scale and shift would show in the scores; the model itself."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model


def export_keeping_batch_norms(model, path: Path, side: int, dynamic_batch: bool = True) -> None:
    """`model` as ONNX at `path`, read from (1, 3, side, side) images, its batch norms kept as nodes (not folded
    into the convolutions: netspec's importer is to meet them), the batch left open if `dynamic_batch`."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on TorchScript's deprecation, one per model
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, side, side),),
            str(path),
            dynamo=False,
            opset_version=17,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["input"],
            output_names=["scores"],
            dynamic_axes={"input": {0: "batch"}} if dynamic_batch else None,
        )


def torchvision_graph(name: str, path: Path, dynamic_batch: bool) -> int:
    """Export torchvision's `name` with seeded random weights to `path`; torchvision's parameter count."""
    import torch

    torchvision = torchvision_module()
    torch.manual_seed(0)
    options = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **options)
    export_keeping_batch_norms(randomised_batch_norms(model).eval(), path, SIDE, dynamic_batch)
    return sum(p.numel() for p in model.parameters())


def zoo_graph(stem: str, path: Path) -> tuple[int, int]:
    """The onnx package's light_<stem>.onnx with random weights, written to `path`; its count of weights, and
    how many of them are Caffe's Scale after a batch norm (see `scale_values`)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{stem}.onnx"))
    graph = model.graph
    stored = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    readers: dict[str, list[tuple[object, int]]] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            readers.setdefault(name, []).append((node, slot))
    rng = np.random.default_rng(0)
    weights = {}
    for node in list(graph.node):
        if node.op_type == "ConstantOfShape" and node.input[0] in stored:
            weights[node.output[0]] = tuple(int(n) for n in stored[node.input[0]])
            graph.node.remove(node)
    for name, array in stored.items():
        if array.dtype == np.float32 and name in readers and array.size > 1:
            weights[name] = array.shape
    arrays = {name: random_weight(shape, readers, name, rng) for name, shape in weights.items()}
    still_read = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in still_read and t.name not in arrays]
    inputs = [value for value in graph.input if value.name not in stored or value.name in still_read]
    del graph.initializer[:], graph.input[:]
    graph.initializer.extend(kept + [numpy_helper.from_array(array, name) for name, array in arrays.items()])
    # IR 3, as the zoo's files are: every initializer is listed among the graph's inputs too.
    graph.input.extend(inputs)
    known = {value.name for value in graph.input}
    graph.input.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, array.shape)
        for name, array in arrays.items()
        if name not in known
    )
    onnx.checker.check_model(model)
    temper(model, arrays)
    onnx.save(model, str(path))
    return sum(int(array.size) for array in arrays.values()), scale_values(graph, arrays, readers)


def scale_values(graph, arrays: dict[str, np.ndarray], readers) -> int:
    """The values of the arrays that a Mul or an Add right after a BatchNormalization (or after such a Mul)
    reads, through an Unsqueeze: Caffe's Scale layer, which import folds into the batch norm (scale·m, shift·m + a),
    so that netspec's count has them not as arrays of their own."""
    producer = {out: node for node in graph.node for out in node.output}

    def after_batchnorm(node) -> bool:
        data = producer.get(node.input[0])
        return data is not None and (
            data.op_type == "BatchNormalization" or (data.op_type == "Mul" and after_batchnorm(data))
        )

    folded = 0
    for name, array in arrays.items():
        node, slot = readers[name][0]
        while node.op_type in PASSING:
            node, slot = readers[node.output[0]][0]
        if node.op_type in ("Mul", "Add") and slot == 1 and after_batchnorm(node):
            folded += int(array.size)
    return folded


PASSING = ("Unsqueeze", "Reshape")
"""What Caffe2's graphs put between a weight and its layer: Unsqueeze before a Scale's Mul and Add, Reshape
before a Gemm."""
HOMOGENEOUS = ("Relu", "GlobalAveragePool", "AveragePool", "MaxPool", "Reshape", "Flatten", "Dropout")
"""Operators f with f(a·x) = a·f(x) for a > 0: a factor on the weights of the layer before them reaches the scores."""


def random_weight(shape, readers, name: str, rng: np.random.Generator) -> np.ndarray:
    """Random values for the weight `name`, by what reads it: He's scale for a Conv's or a Gemm's weights,
    scales about 1 and positive variances for a batch norm (or Caffe's Scale, a Mul), small shifts elsewhere."""
    node, slot = readers[name][0]
    while node.op_type in PASSING:
        node, slot = readers[node.output[0]][0]
    op = node.op_type
    fan_in = int(np.prod(shape)) // shape[0] if shape else 1
    if op == "Gemm" and slot == 1 and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
        fan_in = shape[0]
    if op in ("Conv", "Gemm") and slot == 1:
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    if (op == "BatchNormalization" and slot in (1, 4)) or (op == "Mul" and slot == 1):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.normal(0.0, 0.1, shape).astype(np.float32)


def temper(model, arrays: dict[str, np.ndarray]) -> None:
    """Scale the weights of the Conv or Gemm that computes the logits a last Softmax reads, so that the logits
    spread by about 2 for the image compared. Random weights can make them grow through tens of layers until
    the Softmax gives one class 1 and the others 0, scores that would hide any difference."""
    import onnx

    graph = model.graph
    softmax = [node for node in graph.node if node.op_type == "Softmax"]
    if not softmax:
        return
    producer = {out: node for node in graph.node for out in node.output}
    layer = producer[softmax[-1].input[0]]
    while layer.op_type in HOMOGENEOUS:
        layer = producer[layer.input[0]]
    if layer.op_type not in ("Conv", "Gemm"):
        return
    graph.output.append(onnx.helper.make_tensor_value_info(softmax[-1].input[0], onnx.TensorProto.FLOAT, None))
    session = one_thread_session(model.SerializeToString())
    logits = session.run([softmax[-1].input[0]], {session.get_inputs()[0].name: image()})[0]
    del graph.output[-1]
    factor = 2.0 / float(logits.std())
    for name in layer.input[1:]:
        while name not in arrays:  # a weight passed through a Reshape
            name = producer[name].input[0]
        arrays[name] *= factor
    for tensor in graph.initializer:
        if tensor.name in arrays:
            tensor.CopyFrom(onnx.numpy_helper.from_array(arrays[tensor.name], tensor.name))


def one_thread_session(model: Path | bytes):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"]
    )


def image() -> np.ndarray:
    """One seeded random 224×224 RGB image, scaled onto 0..1 and normalised with ImageNet's mean and std."""
    pixels = np.random.default_rng(1).random((1, 3, SIDE, SIDE), dtype=np.float32)
    return (pixels - MEAN[:, None, None]) / STD[:, None, None]
