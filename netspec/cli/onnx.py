"""`netspec export` and `netspec import`: trade networks with ONNX (needs the onnx extra)."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import output, refuse_overwrite, spec_inputs
from netspec.folders import SPEC_SUFFIXES
from netspec.loader import load


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output("The .onnx file to write.")
@max_params_option
def export(spec: Path, out: Path, max_params: int) -> None:
    """Write SPEC's network as an ONNX model (opset 17) computing the same scores."""
    from netspec.interop.export import export as write_onnx  # onnx is imported by this command only

    network = load(spec, max_params)
    refuse_overwrite("-o", out, spec_inputs(spec, network.spec))
    written = write_onnx(network, out)
    click.echo(f"wrote {written}")


def _numbers(count: int | None, example: str):
    """A click callback reading comma-separated numbers: `count` of them, or one or more."""

    def parse(ctx: click.Context, param: click.Parameter, text: str | None) -> list[float] | None:
        if text is None:
            return None
        try:
            values = [float(part) for part in text.split(",")]
        except ValueError:
            values = []
        if not values or (count is not None and len(values) != count):
            wanted = f"{count} numbers" if count else "one number, or one per channel,"
            raise click.BadParameter(f"expected {wanted} separated by commas, such as {example}; got {text!r}")
        return values

    return parse


def _image(ctx: click.Context, param: click.Parameter, text: str | None) -> dict | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 3 and all(part.isascii() and part.isdigit() and int(part) > 0 for part in parts[:2]):
        if parts[2] in ("rgb", "grayscale"):
            return {"width": int(parts[0]), "height": int(parts[1]), "color": parts[2]}
    raise click.BadParameter(f"expected WIDTH,HEIGHT,COLOR (COLOR rgb or grayscale), such as 224,224,rgb; got {text!r}")


def _crop(ctx: click.Context, param: click.Parameter, text: str | None) -> int | list[int] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) in (1, 2) and all(part.isascii() and part.isdigit() and int(part) > 0 for part in parts):
        return int(parts[0]) if len(parts) == 1 else [int(part) for part in parts]
    raise click.BadParameter(f"expected N (a square) or HEIGHT,WIDTH, such as 224; got {text!r}")


@click.command(name="import")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output("The spec to write (its arrays go beside it as .npz).")
@click.option("--name", help="The spec's name  [default: netspec's metadata in the model, else the graph's name]")
@click.option(
    "--classes",
    metavar="A,B,...",
    help="The class labels, in the order of the scores  [default: netspec's metadata, else 0, 1, ...]",
)
@click.option(
    "--classes-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of class labels, one a line, as ImageNet's synset files (for labels that hold commas).",
)
@click.option(
    "--image",
    metavar="WIDTH,HEIGHT,COLOR",
    callback=_image,
    help="The image the model reads (COLOR rgb or grayscale), where its input shape or metadata do not say.",
)
@click.option(
    "--resize",
    type=click.IntRange(min=1),
    metavar="N",
    help="Resize each image's shorter side to N pixels, keeping its shape, before --crop (torchvision's Resize(N)).",
)
@click.option(
    "--crop",
    metavar="N|HEIGHT,WIDTH",
    callback=_crop,
    help="Then cut the middle N × N (or HEIGHT × WIDTH) pixels, as torchvision's CenterCrop does.",
)
@click.option(
    "--interpolation",
    type=click.Choice(["bilinear", "bicubic"]),
    help="The filter that resizes  [default: bilinear, torchvision's]",
)
@click.option(
    "--scale",
    metavar="LOW,HIGH",
    callback=_numbers(2, "-1,1"),
    help="Pixel values 0..255 are mapped onto LOW..HIGH  [default: netspec's metadata, else 0,1]",
)
@click.option(
    "--mean", metavar="M[,M,M]", callback=_numbers(None, "0.485,0.456,0.406"), help="Subtracted after scaling."
)
@click.option(
    "--std", metavar="S[,S,S]", callback=_numbers(None, "0.229,0.224,0.225"), help="Divided by after the mean."
)
@max_params_option
def import_command(
    model: Path,
    out: Path,
    name: str | None,
    classes: str | None,
    classes_file: Path | None,
    image: dict | None,
    resize: int | None,
    crop: int | list[int] | None,
    interpolation: str | None,
    scale: list[float] | None,
    mean: list[float] | None,
    std: list[float] | None,
    max_params: int,
) -> None:
    """Write an ONNX MODEL (an image classifier, say exported from PyTorch) as a spec and its .npz.

    Graphs that branch and merge (ResNet, DenseNet, MobileNet, ShuffleNet...) import as add,
    concat and multiply layers, named as the model names its modules, one layer a line. A node
    netspec cannot reproduce exactly is named in the error (NS503), and nothing is written.
    What import maps and refuses: docs/onnx.md.
    """
    from netspec.interop.importer import import_model

    if out.suffix not in SPEC_SUFFIXES:
        raise click.UsageError(f"-o {out}: the spec is a .yaml or .yml file")
    if classes is not None and classes_file is not None:
        raise click.UsageError("give the labels with --classes or with --classes-file, not both")
    refuse_overwrite("-o", out, [model, *([classes_file] if classes_file else [])], writes=[out.with_suffix(".npz")])
    sizing = {"resize": resize, "crop": crop, "interpolation": interpolation}
    described = {**(image or {}), **{key: value for key, value in sizing.items() if value is not None}}
    described.update(scale=scale, mean=mean, std=std)
    labels = classes_file if classes is None else [label.strip() for label in classes.split(",")]
    spec, arrays = import_model(model, out, max_params=max_params, name=name, classes=labels, image=described)
    click.echo(f"wrote {spec} and {arrays}")
