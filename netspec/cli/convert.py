"""`netspec convert`: write a PyTorch state dict (.pth) as .safetensors, which a spec's weights_file reads."""

from __future__ import annotations

from pathlib import Path

import click


def _safetensors_name(ctx: click.Context, param: click.Parameter, out: Path) -> Path:
    if out.name.lower() == ".safetensors":  # Path's suffix of a name that is only a suffix is ""
        raise click.BadParameter(f"{out} has no name before .safetensors; write e.g. resnet18.safetensors")
    if out.suffix.lower() != ".safetensors":
        raise click.BadParameter(f"{out} should end in .safetensors (netspec reads weight files by their suffix)")
    if not out.parent.is_dir():
        raise click.BadParameter(f"the folder {out.parent} does not exist; create it first, or write OUT elsewhere")
    return out


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), callback=_safetensors_name)
@click.option(
    "--strip-prefix",
    metavar="PREFIX",
    help="Take PREFIX off the keys that start with it (module. of a model saved inside torch.nn.DataParallel).",
)
def convert(source: Path, out: Path, strip_prefix: str | None) -> None:
    """Write the PyTorch state dict in SOURCE (.pth, .pt) to OUT (.safetensors), keeping PyTorch's names.

    SOURCE is read with torch.load(weights_only=True), which makes tensors and plain containers only
    and runs no code from the file; a checkpoint holding the state dict under "state_dict" or "model"
    is read from there. Load OUT with `weights_file: {file: OUT, names: pytorch}`. Needs PyTorch.
    """
    from netspec.convert import convert as write_safetensors
    from netspec.convert import summary

    if out.resolve() == source.resolve():
        raise click.UsageError(f"OUT {out} would overwrite SOURCE; choose another name")
    count, size = write_safetensors(source, out, strip_prefix)
    click.echo(f"wrote {out} ({summary(count, size)})")
