"""`netspec schema`: print the JSON Schema of the spec format, for editors and CI."""

from __future__ import annotations

import json

import click

from netspec.schema import json_schema


@click.command()
def schema() -> None:
    """Print the JSON Schema of spec format version 1 (schema/netspec-v1.schema.json holds a copy).

    Editors with the YAML language server complete keys and flag mistakes with it; add
    `# yaml-language-server: $schema=<path or URL of the schema>` as a spec's first line.
    """
    click.echo(schema_text())


def schema_text() -> str:
    """The schema as the committed copy stores it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False)
