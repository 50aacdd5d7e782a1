"""Import an ONNX graph made of netspec's operators as a spec and its arrays.

The graph is mapped by `chain` (which refuses, naming the node, what netspec cannot reproduce
exactly); `described` adds the name, labels and preprocessing; the result is checked and built
as a spec with its own weight files would be, and written only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netspec.builder import DEFAULT_MAX_PARAMS
from netspec.errors import Problem, SpecError
from netspec.interop.chain import Chain, Refusal
from netspec.interop.described import document, input_shape, refuse_text
from netspec.interop.export import onnx_module
from netspec.layers import KINDS

OLDEST_OPSET = 7  # Gemm, Dropout and BatchNormalization took their present meaning at opset 7


def read_model(path: Path):
    """Load an ONNX file, following external-data paths only inside the model's folder.

    Raises:
        SpecError: not an ONNX file, or an empty one (NS502); external data outside the model's folder,
            missing or cut short (NS504).
    """
    onnx = onnx_module()
    name = str(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - onnx raises DecodeError and friends for any bad file
        raise SpecError(Problem("NS502", f"not a readable ONNX model ({type(err).__name__})", file=name)) from None
    if not model.graph.node and not model.graph.input:  # protobuf reads an empty file as an empty model
        what = "the file is empty" if path.stat().st_size == 0 else "the file holds no ONNX graph"
        raise SpecError(Problem("NS502", f"{what}; give a model exported to ONNX", file=name))
    base = path.parent.resolve()
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base) or not target.is_file():
            message = f"tensor {tensor.name!r} keeps its data in {location!r}, outside the model's folder or missing"
            raise SpecError(Problem("NS504", message, file=name))
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(base))
    except (ValueError, OSError) as err:  # a data file cut short (copied in part): onnx says how much is missing
        message = f"the model's external data cannot be read ({err}); copy the model's data file again"
        raise SpecError(Problem("NS504", message, file=name)) from None
    return model


def to_spec(
    model,
    source: str,
    *,
    name: str | None = None,
    classes: Sequence[str] | Path | None = None,
    image: dict[str, Any] | None = None,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The spec (as plain data) and the arrays ("<layer>.<param>") of an ONNX model.

    `name`, `classes` and `image` are what the caller says of the network (see `import_model`),
    over what the model's metadata and input shape say.

    Raises:
        SpecError: a node netspec cannot reproduce exactly, naming it (NS503); options that do
            not fit the model (NS505).
    """
    onnx = onnx_module()
    graph = model.graph
    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)
    if opset < OLDEST_OPSET:
        message = f"the model uses ONNX opset {opset}; netspec reads opset {OLDEST_OPSET} and later: export it again"
        raise SpecError(Problem("NS503", message, file=source))
    arrays = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in arrays]
    if len(inputs) != 1:
        raise SpecError(Problem("NS503", f"the graph has {len(inputs)} inputs; netspec networks have one", file=source))
    if len(graph.output) != 1:
        message = f"the graph has {len(graph.output)} outputs; netspec networks have one, the class scores"
        raise SpecError(Problem("NS503", message, file=source))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    dims = inputs[0].type.tensor_type.shape.dim
    batch = dims[0].dim_value if dims else 0  # 0: the batch size is left open, as it should be
    model_shape = [d.dim_value for d in dims[1:]]  # 0 for a size left open
    network_input, shape = input_shape(model_shape, metadata, image or {}, source)
    walk = Chain(onnx, graph, arrays, shape, batch, opset, max_params)
    try:
        walk.run(inputs[0].name, graph.output[0].name)
    except Refusal as refusal:
        node = refusal.node
        message = f"node {node.name or node.op_type!r} ({node.op_type}): {refusal.why}" if node else refusal.why
        raise SpecError(Problem(refusal.code, message, file=source)) from None
    except (KeyError, ValueError, TypeError, IndexError) as err:  # a node lacking an attribute or input it needs
        node = walk.node
        if node is None:  # pragma: no cover - every such error is raised while mapping a node
            raise
        cause = f"{type(err).__name__}: {err}"
        message = f"node {node.name or node.op_type!r} ({node.op_type}) is malformed: it lacks what it needs ({cause})"
        raise SpecError(Problem("NS502", message, file=source)) from None
    if "image" in network_input and len(shape) == 1 and walk.layers and not KINDS[walk.layers[0]["type"]].reads_flat:
        message = (
            f"the model reads a vector and its first layer is a {walk.layers[0]['type']}; netspec reads an image "
            "as a vector only in a dense layer first, so leave the image out"
        )
        raise SpecError(Problem("NS505", message, file=source))
    scores = int(np.prod(walk.shape))
    described = document(model, metadata, network_input, walk.layers, scores, source, name=name, classes=classes)
    return described, walk.params


def import_model(
    path: Path,
    out: Path,
    *,
    max_params: int = DEFAULT_MAX_PARAMS,
    name: str | None = None,
    classes: Sequence[str] | Path | None = None,
    image: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write the ONNX model at `path` as a spec (`out`) and its arrays (`out` with suffix .npz).

    Args:
        path: the .onnx file.
        out: the spec to write; its arrays go beside it as .npz.
        max_params: refuse models with more parameters than this.
        name: the spec's name (default: the one in netspec's metadata, else the graph's name).
        classes: the class labels, in the order of the scores, or a file of them, one a line
            (default: the labels in netspec's metadata, else '0', '1', ...).
        image: what to say of the input image where the metadata does not: any of width,
            height, color ("rgb" or "grayscale"), resize and crop (as torchvision's Resize and
            CenterCrop), scale ([low, high]), mean and std (one value, or one per channel).

    Raises:
        SpecError: the model cannot be read or mapped (NS502–NS504), naming the node concerned;
            options that do not fit the model (NS123, NS505); too many parameters (NS208).
    """
    from pydantic import ValidationError

    from netspec.builder import build
    from netspec.saving import save
    from netspec.spec import Spec
    from netspec.validation import problems_from

    refuse_text(classes)
    onnx = onnx_module()
    model = read_model(path)
    try:
        document, arrays = to_spec(model, str(path), name=name, classes=classes, image=image, max_params=max_params)
    except (KeyError, ValueError, TypeError, IndexError) as err:  # a node or metadata lacking what it must hold
        message = f"the model is malformed: a node or its metadata lacks what it needs ({type(err).__name__}: {err})"
        raise SpecError(Problem("NS502", message, file=str(path))) from None
    initialized = {tensor.name for tensor in model.graph.initializer}  # older files list weights as inputs too
    graph_input = next(value for value in model.graph.input if value.name not in initialized)
    element = graph_input.type.tensor_type.elem_type
    dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}.get(element)
    if dtype is None:
        raise SpecError(Problem("NS503", "the model's input is neither float32 nor float64", file=str(path)))
    document["dtype"] = dtype
    try:
        spec = Spec.model_validate(document)
    except ValidationError as err:
        found = "; ".join(f"{p.dotted_path}: {p.message}" for p in problems_from(err, Spec))
        raise SpecError(Problem("NS503", f"the graph does not make a valid spec ({found})", file=str(path))) from None
    try:
        network = build(spec, arrays=arrays, max_params=max_params)  # the same checks as a spec's own weight files
    except SpecError as err:
        # A layer that does not fit its input, or a network breaking a whole-spec rule (NS121-NS131), is a graph
        # netspec cannot reproduce: NS503, with the builder's reason (naming the layer, named after the node).
        # Arrays netspec refuses (a negative variance: NS104) and the size (NS208) keep their own codes.
        raise SpecError(
            [
                Problem("NS503", f"the graph maps to a network netspec refuses: {problem.message}", file=str(path))
                if "NS121" <= problem.code <= "NS131"
                else problem.located(str(path), None, None)
                for problem in err.problems
            ]
        ) from None
    return save(network, out, flow=True)  # one layer a line: a large network reads in a screen or two
