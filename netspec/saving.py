"""Save a network as a readable spec plus a .npz of its arrays, keyed "<layer>.<param>"."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from netspec.files import atomic_write
from netspec.yaml_source import reads_as_text

if TYPE_CHECKING:
    from netspec.network import Network

# Keys whose values the .npz replaces, so the saved spec stays short and readable.
_PARAM_KEYS = {"weights", "bias", "seed"}


def save(network: Network, path: Path) -> tuple[Path, Path]:
    """Write `path` (YAML) and `path` with suffix .npz; the .npz is written first, both atomically."""
    arrays_path = path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(network, arrays_path)
    text = yaml.dump(spec_document(network, arrays_path.name), Dumper=_Dumper, sort_keys=False, allow_unicode=True)
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


def save_arrays(network: Network, path: Path) -> None:
    """Write every parameter array to a .npz under "<layer>.<param>", the keys `weights_file` reads."""
    arrays = {f"{layer.name}.{name}": array for layer in network.layers for name, array in layer.params.items()}
    with atomic_write(path) as stream:
        np.savez(stream, **arrays)


def spec_document(network: Network, weights_file: str) -> dict:
    """The spec as plain data with `weights_file` pointing at the saved arrays."""
    spec = network.spec
    document = spec.model_dump(mode="json", exclude={"layers", "weights_file"}, exclude_none=True)
    document["weights_file"] = weights_file
    document["layers"] = [
        {
            "name": layer.name,
            "type": layer.type,
            **layer.spec.model_dump(mode="json", exclude_defaults=True, exclude=_PARAM_KEYS | {"name", "type"}),
        }
        for layer in network.layers
    ]
    return document
