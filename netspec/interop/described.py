"""What an imported spec says beyond its graph: its name, class labels and how its input is read.

Each comes from the caller if given, else from netspec's metadata in the model, else from the
graph itself (its name, '0', '1', ... and its input shape).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netspec.errors import Problem, SpecError, plural
from netspec.labels import label_problems, read_labels

IMAGE_KEYS = ("width", "height", "color", "resize", "interpolation", "crop", "scale", "mean", "std")
"""What a caller may say of an imported model's input image (the fields of a spec's input.image)."""
GIVE_IMAGE = "give the image it reads (--image WIDTH,HEIGHT,COLOR, or image= in Python)"


EXPORTERS_GRAPH_NAMES = ("main_graph", "torch_jit", "torch-jit-export")
"""Graph names PyTorch's exporters give every model: the file's name says more (resnet18.onnx: resnet18)."""


def labels_for(classes: Sequence[str] | Path, scores: int, source: str) -> list[str]:
    """The caller's labels for a model giving `scores` scores: a list, or a file read by `read_labels`.

    Raises:
        SpecError: a label that is empty, not printable or listed twice; fewer or more labels than scores.
    """
    refuse_text(classes)
    if isinstance(classes, Path):
        labels = read_labels(classes)
        if len(labels) != scores:
            message = (
                f"the file holds {plural(len(labels), 'label')} but the model gives {plural(scores, 'score')}; "
                "write one label a line for each score, in the order of the scores"
            )
            raise SpecError(Problem("NS123", message, file=str(classes)))
        return labels
    labels = [str(label) for label in classes]
    problems = label_problems(labels, lambda i: {"path": ("classes", i)}, lambda i: f"classes[{i}]")
    if problems:
        raise SpecError(problems)
    if len(labels) != scores:
        message = (
            f"{plural(len(labels), 'label')} given but the model gives {plural(scores, 'score')}; "
            "give one label for each score, in the order of the scores"
        )
        raise SpecError(Problem("NS123", message, ("classes",), file=source))
    return labels


def refuse_text(classes) -> None:
    """A file name given as text would otherwise be read as one label a letter."""
    if isinstance(classes, str):
        raise TypeError(f"classes is a list of labels or a Path to a file of them; got the text {classes!r}")


def input_shape(
    shape: list[int], metadata: dict[str, str], given: dict[str, Any], source: str
) -> tuple[dict[str, Any], list[int]]:
    """The spec's `input`, and the shape (without the batch) of the tensor the graph's first node reads.

    `shape` is the model's input shape without the batch, 0 for a size it leaves open; `given` is
    what the caller says of the image (keys of IMAGE_KEYS), over what the metadata says.

    Raises:
        SpecError: an input netspec has no form for (NS503); `given` not fitting the model (NS505).
    """
    unknown = sorted(set(given) - set(IMAGE_KEYS))
    if unknown:
        message = f"unknown image settings {unknown}; give any of {', '.join(IMAGE_KEYS)}"
        raise SpecError(Problem("NS505", message, file=source))
    given = {key: value for key, value in given.items() if value is not None}
    stored = json.loads(metadata["netspec.input"]) if "netspec.input" in metadata else {}
    shown = "(" + ", ".join(str(n) if n else "?" for n in shape) + ")"
    if len(shape) == 3:
        channels, height, width = shape
        color = {1: "grayscale", 3: "rgb"}.get(channels)
        if color is None:
            message = f"an image input with {channels} channels; netspec reads 1 (grayscale) or 3 (rgb)"
            raise SpecError(Problem("NS503", message, file=source))
        image = {"color": color, **({"width": width} if width else {}), **({"height": height} if height else {})}
        image = {**image, **stored.get("image", {}), **given}
        if "width" not in image or "height" not in image:
            message = f"the model's input {shown} leaves the image's size open; {GIVE_IMAGE}"
            raise SpecError(Problem("NS505", message, file=source))
        image = _image(image, source)
        read = (3 if image["color"] == "rgb" else 1, image["height"], image["width"])
        if any(size and size != wanted for size, wanted in zip(shape, read)):
            message = (
                f"an image of {image['width']}×{image['height']} pixels in {image['color']} is read as {read}, but the "
                f"model reads "
                f"{shown}; give the width, height and color the model was made for"
            )
            raise SpecError(Problem("NS505", message, file=source))
        return {"image": image}, list(read)
    if len(shape) == 1:
        if not given:
            return (stored or {"features": shape[0]}), list(shape)
        if "width" not in given or "height" not in given:
            message = (
                f"the image settings given ({', '.join(key for key in IMAGE_KEYS if key in given)}) describe an image, "
                f"but the model reads a vector of {shape[0]:,} numbers; {GIVE_IMAGE}, or leave them out"
            )
            raise SpecError(Problem("NS505", message, file=source))
        image = _image({"color": "rgb", **given}, source)
        values = (3 if image["color"] == "rgb" else 1) * image["height"] * image["width"]
        if values != shape[0]:
            message = (
                f"an image of {image['width']}×{image['height']} pixels in {image['color']} holds {values:,} values, "
                f"but the model reads {shape[0]:,}; give the width, height and color the model was made for"
            )
            raise SpecError(Problem("NS505", message, file=source))
        return {"image": image}, list(shape)
    message = f"an input of shape {shown}; netspec reads (features) or (channels, height, width)"
    raise SpecError(Problem("NS503", message, file=source))


def _image(image: dict[str, Any], source: str) -> dict[str, Any]:
    """`image` checked as a spec's input.image is, with one mean or std value spread over the channels."""
    from pydantic import ValidationError

    from netspec.inputs import ImageInput
    from netspec.validation import problems_from

    channels = 3 if image.get("color") == "rgb" else 1
    spread = [key for key in ("mean", "std") if isinstance(image.get(key), list | tuple) and len(image[key]) == 1]
    image = {**image, **{key: list(image[key]) * channels for key in spread}}
    try:
        checked = ImageInput.model_validate(image)
    except ValidationError as err:
        problems = []
        for p in problems_from(err, ImageInput):
            path = p.path[:1] if p.path[:1] and p.path[0] in spread else p.path  # one value given: one problem
            problem = Problem(p.code, p.message, ("input", "image", *path), file=source)
            if problem not in problems:
                problems.append(problem)
        raise SpecError(problems) from None
    return checked.model_dump(mode="json", exclude_none=True)


def document(
    model,
    metadata: dict[str, str],
    network_input: dict[str, Any],
    layers: list[dict[str, Any]],
    scores: int,
    source: str,
    *,
    name: str | None = None,
    classes: Sequence[str] | Path | None = None,
) -> dict[str, Any]:
    """The spec, as plain data, of a mapped graph giving `scores` scores."""
    if classes is not None:
        labels = labels_for(classes, scores, source)
    elif "netspec.classes" in metadata:
        labels = json.loads(metadata["netspec.classes"])
    else:
        labels = [str(i) for i in range(scores)]
    graph_name = model.graph.name if model.graph.name not in EXPORTERS_GRAPH_NAMES else ""
    spec = {
        "netspec": 1,
        "name": name if name is not None else (metadata.get("netspec.name") or graph_name or Path(source).stem),
        "classes": labels,
        "input": network_input,
        "layers": layers,
    }
    if model.doc_string:
        spec["description"] = model.doc_string
    return spec
