"""`netspec upgrade`: bring a spec to the current format version (reserved: version 1 is the first)."""

from __future__ import annotations

from pathlib import Path

import click

from netspec.errors import Problem, SpecError
from netspec.loader import read_text
from netspec.spec import FORMAT_VERSION
from netspec.yaml_source import read_yaml


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def upgrade(spec: Path) -> None:
    """Upgrade SPEC to the current format version, or say that it already is current."""
    source = read_yaml(read_text(spec), str(spec))
    version = source.data.get("netspec") if isinstance(source.data, dict) else None
    if version == FORMAT_VERSION:
        click.echo(f"{spec}: format version {FORMAT_VERSION} is current; nothing to upgrade")
        return
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        current = FORMAT_VERSION
        message = f"format version {version} is newer than this netspec, which reads version {current}; upgrade netspec"
    else:
        message = (
            f"the format version must be a whole number such as {FORMAT_VERSION}; write 'netspec: {FORMAT_VERSION}'"
        )
    raise SpecError(source.locate(Problem("NS107", message, ("netspec",))))
