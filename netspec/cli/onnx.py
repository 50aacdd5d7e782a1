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


@click.command(name="import")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output("The spec to write (its arrays go beside it as .npz).")
def import_command(model: Path, out: Path) -> None:
    """Write an ONNX MODEL made of netspec's operators as a spec and its .npz."""
    from netspec.interop.importer import import_model

    if out.suffix not in SPEC_SUFFIXES:
        raise click.UsageError(f"-o {out}: the spec is a .yaml or .yml file")
    refuse_overwrite("-o", out, [model], writes=[out.with_suffix(".npz")])
    spec, arrays = import_model(model, out)
    click.echo(f"wrote {spec} and {arrays}")
