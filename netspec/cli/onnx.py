"""`netspec export` and `netspec import`: trade networks with ONNX (needs `pip install 'netspec[onnx]'`)."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.cli.options import max_params as max_params_option
from netspec.cli.options import output
from netspec.loader import load


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output("The .onnx file to write.")
@max_params_option
def export(spec: Path, out: Path, max_params: int) -> None:
    """Write SPEC's network as an ONNX model (opset 17) computing the same scores."""
    from netspec.interop.export import export as write_onnx  # onnx is imported by this command only

    if out.resolve() == spec.resolve():
        raise click.UsageError(f"-o {out} would overwrite the spec; choose another name")
    written = write_onnx(load(spec, max_params), out)
    click.echo(f"wrote {written}")


@click.command(name="import")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output("The spec to write (its arrays go beside it as .npz).")
def import_command(model: Path, out: Path) -> None:
    """Write an ONNX MODEL made of netspec's operators as a spec and its .npz."""
    from netspec.interop.importer import import_model

    if out.suffix not in (".yaml", ".yml"):
        raise click.UsageError(f"-o {out}: the spec is a .yaml or .yml file")
    if model.resolve() in (out.resolve(), out.resolve().with_suffix(".npz")):
        raise click.UsageError(f"-o {out} would overwrite the model; choose another name")
    spec, arrays = import_model(model, out)
    click.echo(f"wrote {spec} and {arrays}")
