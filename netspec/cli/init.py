"""`netspec init`: write a commented starter spec that validates as it is."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import click

from netspec.cli.schema import schema_text
from netspec.files import atomic_write
from netspec.folders import SPEC_SUFFIXES
from netspec.schema import MODELINE, SCHEMA_FILE_NAME, committed_schema
from netspec.spec import FORMAT_VERSION
from netspec.yaml_source import reads_as_text

IMAGE_INPUT = """\
input:                                  # what the network reads
  image:
    width: 32                           # pictures of other sizes are resized to width × height
    height: 32
    color: rgb                          # rgb (3 channels) or grayscale (1)
    scale: [0.0, 1.0]                   # pixel values 0..255 become 0.0..1.0
"""

FEATURES_INPUT = """\
input:                                  # what the network reads
  features: 4                           # a vector of 4 numbers
"""

TEMPLATE = """\
{modeline}
# A netspec spec: {name}. Every key is described in netspec's docs/spec-format.md.
# Check it with `netspec validate {file}`; see its layers with `netspec summary {file}`.
netspec: {version}                              # format version
name: {name}
description: What this network tells apart.
{classes_line}# output labels, in output order

{input}
seed: 0                                 # makes the initial weights the same on every run

layers:
  # Each neuron computes Output = Weight·Input + Bias, then its activation.
  - name: hidden
    type: dense
    neurons: 16
    activation: relu
    weights: he_uniform                 # initial weights; or numbers, or {{file: hidden.npy}}
    bias: 0.0
  - name: output                        # one neuron per class
    type: dense
    neurons: {count}
    activation: softmax

training:                               # used by `netspec train`; flags override
  optimizer: adam
  learning_rate: 0.001
  epochs: 20
  val_split: 0.1
"""


@click.command()
@click.argument("name")
@click.option(
    "--input",
    "kind",
    type=click.Choice(["image", "features"]),
    default="image",
    show_default=True,
    help="What the network reads.",
)
@click.option("--classes", default="yes,no", show_default=True, help="Class labels, separated by commas.")
@click.option("--force", is_flag=True, help="Overwrite NAME.yaml if it exists.")
def init(name: str, kind: str, classes: str, force: bool) -> None:
    """Write NAME.yaml, a commented starter spec that validates as it is."""
    path = Path(name if name.endswith(SPEC_SUFFIXES) else f"{name}.yaml")
    labels = [label.strip() for label in classes.split(",") if label.strip()]
    if not labels:
        raise click.BadParameter("give at least one class label", param_hint="--classes")
    if len(set(labels)) != len(labels):
        raise click.BadParameter(f"class labels must differ: {classes}", param_hint="--classes")
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; choose another name or add --force")
    schema, schema_written = _schema_for(path.parent)
    text = TEMPLATE.format(
        modeline=MODELINE + schema,
        name=_scalar(path.stem),
        file=path,
        version=FORMAT_VERSION,
        classes_line=f"classes: [{', '.join(_scalar(label) for label in labels)}]".ljust(39) + " ",
        count=len(labels),
        input=IMAGE_INPUT if kind == "image" else FEATURES_INPUT,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        stream.write(text.encode("utf-8"))
    command = f"netspec validate {shlex.quote(str(path))}"  # quoted: a name with a space still pastes
    count = "1 class" if len(labels) == 1 else f"{len(labels)} classes"
    also = f" and {schema_written}, the schema editors check it with" if schema_written else ""
    click.echo(f"wrote {path}{also}: {count}, {kind} input; check it with: {command}")


def _schema_for(folder: Path) -> tuple[str, Path | None]:
    """The schema a new spec in `folder` names on its first line, and the schema file written for it, if any.

    Editors read a path relative to the spec. Inside the source checkout netspec runs from, that is
    the committed schema, as the shipped specs name it; elsewhere, the same file by its absolute URI.
    An installed netspec has no schema file on disk, so one is written beside the spec (one already
    there is kept: the user's other specs may name it).
    """
    schema = committed_schema()
    if schema is None:
        beside = folder / SCHEMA_FILE_NAME
        if beside.exists():
            return SCHEMA_FILE_NAME, None
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(beside) as stream:
            stream.write((schema_text() + "\n").encode("utf-8"))
        return SCHEMA_FILE_NAME, beside
    checkout, folder = schema.parent.parent, folder.resolve()
    if folder.is_relative_to(checkout):
        return Path(os.path.relpath(schema, folder)).as_posix(), None
    return schema.as_uri(), None


_SPECIAL = set(":#,[]{}&*!|>'%@`" + '"')


def _scalar(text: str) -> str:
    """Text as a YAML value that reads back as the same text (JSON strings are YAML too)."""
    plain = reads_as_text(text) and text[0].isalnum() and not _SPECIAL & set(text)
    return text if plain else json.dumps(text, ensure_ascii=False)
