"""Save a network as a readable spec plus a .npz of its arrays, keyed "<layer>.<param>"."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from netspec.files import atomic_write
from netspec.folders import SPEC_SUFFIXES
from netspec.schema import MODELINE
from netspec.yaml_source import Source, read_yaml, reads_as_text

if TYPE_CHECKING:
    from netspec.network import Network


def save(
    network: Network,
    path: str | Path,
    source: Source | None = None,
    features: dict | None = None,
    *,
    flow: bool = False,
) -> tuple[Path, Path]:
    """Write the network as a spec (`path`, YAML) plus a .npz of its arrays beside it; return the two paths.

    With the `source` the spec was read from (`netspec train -o`), the spec is that file with its
    comments and key order kept (see `_edited`; `features`, the input's new value where training
    measured it); without, it is written anew from the spec's data: one key a line, or with `flow`,
    one layer a line (see `flow_text`), as import writes a graph. The spec's text is made before
    anything is written, so that a problem in making it leaves nothing behind; then the .npz and the
    spec are written, each atomically: a failure leaves any earlier files as they were.

    Raises:
        ValueError: `path` is not named .yaml or .yml.
    """
    path = Path(path)
    if path.suffix not in SPEC_SUFFIXES:
        raise ValueError(f"save writes a spec: give a .yaml or .yml path, not {path}")
    arrays_path = path.with_suffix(".npz")
    if source is None:
        document = spec_document(network, arrays_path.name)
        text = flow_text(document, str(path)) if flow else None
        text = text or yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    else:
        text = _edited(network, source, path, arrays_path.name, features)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(network, arrays_path)
    with atomic_write(path) as stream:
        stream.write(text.encode("utf-8"))
    return path, arrays_path


class _Dumper(yaml.SafeDumper):
    """Quotes text that netspec's YAML 1.2 reader would otherwise read as a number, boolean or null.

    PyYAML writes by YAML 1.1 rules, which leave e.g. '1e3' and '0o7' unquoted.
    """


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None if reads_as_text(value) else "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


class _FlowDumper(_Dumper):
    """Indents a sequence under its key ("layers:" then "  - {...}"), as the docs write specs."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


_WRAP = 100
"""Where a long list of labels wraps."""
_ONE_LINE = 1 << 30
"""A width no line reaches: a layer is never wrapped."""


def flow_text(document: dict, file: str) -> str | None:
    """The spec with one layer a line, each in flow style (`- {name: fc, type: dense, neurons: 1000}`).

    Each value under a top-level mapping is one flow line too (`image: {width: 224, ...}`), the labels
    one flow list, after the layers (a thousand labels would stand between the name and the layers),
    and `[3, 3]` is written `3` where the layer reads one number as both: a network of a hundred layers
    reads in a screen or two, its arrays being in the .npz. None if the text would not read back as the
    same spec (the caller writes the usual layout then).
    """
    document = {**document, "layers": [_compact(layer) for layer in document["layers"]]}
    order = [key for key in document if key not in ("layers", "classes")] + ["layers", "classes"]
    parts = []
    for key in order:
        value = document[key]
        if key in ("layers", "classes"):
            parts.append("\n")  # a blank line before each long section
        dumper = _FlowDumper(None, sort_keys=False, allow_unicode=True)  # one each: no aliases across keys
        node = dumper.represent_data({key: value})
        inner = node.value[0][1]
        if key == "layers":
            lines = inner.value
        elif isinstance(inner, yaml.MappingNode):
            lines = [each for _, each in inner.value]
        else:
            lines = [inner]
        for line in lines:
            if isinstance(line, yaml.CollectionNode):
                line.flow_style = True
        if key == "classes" and isinstance(value, list):
            parts.append(_wrapped_list(key, value))
            continue
        parts.append(yaml.serialize(node, Dumper=_FlowDumper, width=_ONE_LINE, allow_unicode=True))
    text = "".join(parts)
    return text if read_yaml(text, file).data == document else None


def _wrapped_list(key: str, items: list) -> str:
    """`key: [a, b, ...]` wrapped at _WRAP between items, never inside one (PyYAML would break
    'American alligator' across two lines, which reads back alike but not as a person wrote it)."""
    written = [
        yaml.dump([item], Dumper=_Dumper, default_flow_style=True, width=_ONE_LINE, allow_unicode=True).strip()[1:-1]
        for item in items
    ]
    lines, line = [], f"{key}: ["
    for index, item in enumerate(written):
        piece = item + ("," if index < len(written) - 1 else "]")
        if len(line) + 1 + len(piece) > _WRAP and not line.endswith("["):
            lines.append(line)
            line = "  " + piece
        else:
            line += ("" if line.endswith("[") else " ") + piece
    lines.append(line if written else f"{key}: []")
    return "\n".join(lines) + "\n"


def _compact(layer: dict) -> dict:
    """The layer with `[n, n]` written `n` where its model reads `n` as `[n, n]` (kernel, stride, size...)."""
    from netspec.layers import KINDS  # here: the layers are not needed to save in the usual layout

    model = KINDS[layer["type"]].model
    written = dict(layer)
    for key, value in layer.items():
        if isinstance(value, list) and len(value) == 2 and value[0] == value[1] and type(value[0]) is int:
            try:
                same = getattr(model.model_validate({**written, key: value[0]}), key) == value
            except ValueError:  # pydantic's ValidationError: the one number is not read so
                same = False
            if same:
                written[key] = value[0]
    return written


def save_arrays(network: Network, path: Path) -> None:
    """Write every parameter array to a .npz under "<layer>.<param>", the keys `weights_file` reads."""
    with atomic_write(path) as stream, zipfile.ZipFile(stream, "w") as archive:
        for layer in network.layers:
            for name, array in layer.params.items():
                # A fixed date (numpy.savez stamps the current time) makes equal arrays equal files.
                member = zipfile.ZipInfo(f"{layer.name}.{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(member, "w", force_zip64=True) as file:
                    np.lib.format.write_array(file, np.ascontiguousarray(array), allow_pickle=False)


def spec_document(network: Network, weights_file: str) -> dict:
    """The spec as plain data with `weights_file` pointing at the saved arrays."""
    spec = network.spec
    # What the spec says, not every default: a default written out can break a rule (momentum with adam).
    # The layers are written flat, so a spec's blocks would be definitions no layer uses: left out.
    exclude = {"layers", "weights_file", "blocks"}
    document = spec.model_dump(mode="json", exclude=exclude, exclude_none=True, exclude_unset=True)
    document["weights_file"] = weights_file
    document["layers"] = [
        {
            "name": layer.name,
            "type": layer.type,
            **layer.spec.model_dump(
                mode="json", exclude_defaults=True, exclude={*layer.params, "seed", "name", "type"}
            ),
        }
        for layer in network.layers
    ]
    return document


def _edited(network: Network, source: Source, path: Path, weights_file: str, features: dict | None) -> str:
    """The text of the spec a trained network came from, comments and key order kept, pointing at its arrays.

    Only `weights_file` changes: its value is replaced, or a line is added before `layers:`; and the
    input's `features`, when training measured them (`netspec train --normalize` passes them as
    `features`, the input's new value). If the spec is written in a way this cannot edit safely
    (say, all in flow style), the spec is written anew from its data instead, which keeps every
    value but not the comments.
    """
    expected = {**source.data, "weights_file": weights_file}
    text = _with_weights_file(source.text, source, weights_file)
    if network.spec.classes_file and Path(source.file).parent.resolve() != path.parent.resolve():
        # The labels file stays where it is, and a spec may not name a file outside its folder: the trained
        # spec, written elsewhere, holds the labels themselves.
        expected["classes"] = list(network.spec.classes)
        text = _with_classes(text, source, expected["classes"]) if text is not None else None
    if features is not None:
        expected["input"] = {"features": features}
        text = _with_features(text, source, features) if text is not None else None
    if text is None or read_yaml(text, str(path)).data != expected:
        document = {key: expected[key] for key in [*source.data, "weights_file"]}
        return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    return _schema_comment_from(text, Path(source.file).parent, path.parent)


_SCHEMA_COMMENT = re.compile(re.escape(MODELINE) + r"(\S+)")


def _schema_comment_from(text: str, spec_folder: Path, out_folder: Path) -> str:
    """The editor's schema comment (first line) pointing, from the new folder, at the schema it named.

    Editors read that path relative to the spec; a trained spec written elsewhere would lose it.
    """
    match = _SCHEMA_COMMENT.match(text)
    if match is None or "://" in match.group(1) or Path(match.group(1)).is_absolute():
        return text
    schema = (spec_folder / match.group(1)).resolve()
    if not schema.is_file():
        return text
    moved = Path(os.path.relpath(schema, out_folder.resolve())).as_posix()
    return text[: match.start(1)] + moved + text[match.end(1) :]


def _with_weights_file(text: str, source: Source, name: str) -> str | None:
    lines = text.splitlines(keepends=True)
    value = name if reads_as_text(name) and _PLAIN.fullmatch(name) else json.dumps(name)
    keys = source.root.keys if source.root else {}
    if "weights_file" in keys:
        line, column = source.root.items["weights_file"].line, source.root.items["weights_file"].column
        old = lines[line - 1]
        rest = old[column - 1 :]
        written = _SCALAR.match(rest)
        if written is None:
            return None
        lines[line - 1] = old[: column - 1] + value + rest[written.end() :]
        return "".join(lines)
    if "layers" not in keys or keys["layers"].column != 1:
        return None
    at = keys["layers"].line - 1
    blank = at > 0 and not lines[at - 1].strip()  # keep the spacing of a spec that separates its sections
    lines.insert(at, f"weights_file: {value}   # written by netspec train\n" + ("\n" if blank else ""))
    return "".join(lines)


def _with_classes(text: str, source: Source, labels: list[str]) -> str | None:
    """The text with `classes: {file: ...}`, written on one line at the left margin, replaced by the labels."""
    keys = source.root.keys if source.root else {}
    if (
        "classes" not in keys
        or keys["classes"].column != 1
        or source.root.items["classes"].line != keys["classes"].line
    ):
        return None
    lines = text.splitlines(keepends=True)
    at = keys["classes"].line - 1
    if at + 1 < len(lines) and lines[at + 1][:1] in (" ", "\t"):  # the mapping goes on below: not one line
        return None
    lines[at] = _wrapped_list("classes", labels)
    return "".join(lines)


def _with_features(text: str, source: Source, features: dict) -> str | None:
    """The text with `features: N` replaced by the mapping given, written in flow style where N was.

    Only a whole number written plainly is replaced (`features: 4` or `{features: 4}`); a mapping
    already there is left to the caller's fallback (the spec written anew).
    """
    try:
        where = source.root.items["input"].items["features"]
    except (AttributeError, KeyError, TypeError):
        return None
    lines = text.splitlines(keepends=True)
    old = lines[where.line - 1]
    written = _WHOLE_NUMBER.match(old, where.column - 1)
    if written is None or where.items is not None:
        return None
    flow = "{" + ", ".join(f"{key}: {json.dumps(value)}" for key, value in features.items()) + "}"
    lines[where.line - 1] = old[: where.column - 1] + flow + old[written.end() :]
    return "".join(lines)


_WHOLE_NUMBER = re.compile(r"[0-9]+(?![0-9.eE_xXoO])")
# A plain, single- or double-quoted scalar on one line (a comment after it stays).
_SCALAR = re.compile(r"""'(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^#\n\r]*?(?=\s+#|\s*$)""")
_PLAIN = re.compile(r"[A-Za-z0-9_.\-/]+")
