"""netspec: describe a neural network in a YAML file, check it, and run it.

The public names are imported on first use, so that `import netspec` (and the start of every
`netspec` command) stays light.
"""

# No `from __future__ import annotations` and no plain imports here: each would be one more name
# in `dir(netspec)` and in editors' completion ("annotations", "importlib", "Any"), beside the API.
import typing as _typing

__version__ = "0.1.0"

_HOMES = {
    "build": "netspec.builder",
    "check": "netspec.loader",
    "load": "netspec.loader",
    "read_spec": "netspec.loader",
    "Network": "netspec.network",
    "Spec": "netspec.spec",
    "Problem": "netspec.errors",
    "NetspecError": "netspec.errors",
    "SpecError": "netspec.errors",
    "InputError": "netspec.errors",
    "DataError": "netspec.errors",
}

__all__ = [
    "DataError",
    "InputError",
    "NetspecError",
    "Network",
    "Problem",
    "Spec",
    "SpecError",
    "build",
    "check",
    "load",
    "read_spec",
]

if _typing.TYPE_CHECKING:  # for editors and type checkers; at run time __getattr__ below does the work
    from netspec.builder import build
    from netspec.errors import DataError, InputError, NetspecError, Problem, SpecError
    from netspec.loader import check, load, read_spec
    from netspec.network import Network
    from netspec.spec import Spec


def __getattr__(name: str) -> _typing.Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'netspec' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    """The public API, once each whether or not it was used yet, and the module's own dunder names.

    Submodules (netspec.errors, ...) become attributes as they are imported; they are reached by
    importing them, so they are not listed here.
    """
    dunders = (name for name in globals() if name.startswith("__") and name.endswith("__"))
    return sorted({*__all__, *dunders})
