"""netspec: describe a neural network in a YAML file, check it, and run it."""

from netspec.build import build
from netspec.errors import InputError, NetspecError, Problem, SpecError
from netspec.loader import check, load, read_spec
from netspec.network import Network
from netspec.spec import Spec

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "Network",
    "NetspecError",
    "Problem",
    "Spec",
    "SpecError",
    "build",
    "check",
    "load",
    "read_spec",
]
