"""Field types every layer shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _check_name(name: str) -> str:
    # Names become keys such as "hidden1.weights" in weight files, so a dot would be ambiguous.
    if not name or not set(name) <= _ALLOWED:
        raise PydanticCustomError(
            "NS103",
            "layer names use ASCII letters, digits, '_' and '-' only, got '{name}'",
            {"name": name},
        )
    return name


LayerName = Annotated[str, AfterValidator(_check_name)]
