"""Turn pydantic's validation errors into netspec problems: a code, the path users write, a fix."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Collection
from dataclasses import replace
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from netspec.errors import Problem, plural
from netspec.fields import field_descriptions
from netspec.layers import KINDS

_TYPE_NAMES = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def problems_from(error: ValidationError, root: type[BaseModel], blocks: Collection[str] = ()) -> list[Problem]:
    """One Problem per pydantic error of a `root` model, with paths free of union tags.

    `blocks` are the names of the spec's blocks: a layer whose `type` names one was meant as a use of it.
    """
    problems: list[Problem] = []
    suggested: set[tuple] = set()
    for detail in error.errors(include_url=False):
        if detail["type"] == "spec_rules":
            where = _walk(root, detail["loc"])[0]
            problems.extend(replace(p, path=where + p.path) for p in detail["ctx"]["problems"])
            continue
        problems.append(_problem(detail, root, blocks))
        if detail["type"] == "extra_forbidden":
            path, parent = _unknown_key(root, detail["loc"])
            close = closest(str(path[-1]), list(parent.model_fields) if parent else [])
            if close:
                suggested.add(path[:-1] + (close,))
    # A misspelt key also leaves the right one missing; the "did you mean" line says both.
    return [p for p in problems if not (p.code == "NS102" and p.path in suggested)]


def _problem(detail: dict, root: type[BaseModel], blocks: Collection[str] = ()) -> Problem:
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    if kind == "extra_forbidden":
        path, parent = _unknown_key(root, detail["loc"])
        key = path[-1]
        allowed = list(parent.model_fields) if parent else []
        return Problem("NS101", f"unknown key {key!r}; {_suggest(str(key), allowed, 'allowed keys are')}", path)
    path, parent, target = _walk(root, detail["loc"])
    if kind == "missing":
        description = field_descriptions(parent).get(path[-1]) if parent else None
        hint = f" ({description[0].lower()}{description[1:].rstrip('.')})" if description else ""
        return Problem("NS102", f"missing required key {path[-1]!r}{hint}", path)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        written_as_name = detail["loc"][-1:] == ("name",)  # `weights: he_unifrom`, not a mapping
        return _tag_problem(kind, ctx, path, None if written_as_name else value, blocks)
    if kind.startswith("NS"):
        return Problem(kind, detail["msg"], path)
    if kind == "literal_error":
        choices = [str(c) for c in get_args(target)] if get_origin(target) is Literal else []
        return Problem(
            "NS105", f"must be one of {', '.join(choices)}, got {show(value)}{_did_you_mean(value, choices)}", path
        )
    if kind == "finite_number":
        return Problem("NS106", f"must be a finite number, got {show(value)}", path)
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": "at least",
            "greater_than": "above",
            "less_than_equal": "at most",
            "less_than": "below",
        }
        (limit,) = ctx.values()
        bound = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
        return Problem("NS104", f"must be {words[kind]} {bound}, got {show(value)}", path)
    if kind == "string_too_short" or (kind == "too_short" and isinstance(value, str)):
        return Problem("NS109", "must not be empty", path)
    if kind in ("too_short", "too_long"):
        return Problem("NS108", _length_message(parent, path, ctx, value), path)
    if kind in _TYPE_NAMES:
        return Problem("NS103", f"must be {_TYPE_NAMES[kind]}, got {show(value)}", path)
    return Problem("NS103", f"{detail['msg'][0].lower()}{detail['msg'][1:]}, got {show(value)}", path)


def _tag_problem(kind: str, ctx: dict, path: tuple, value: Any, blocks: Collection[str] = ()) -> Problem:
    initializer = ctx.get("discriminator") == "'init'"
    key = "init" if initializer else "type"
    names = ", ".join(re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))) or ", ".join(KINDS)
    if isinstance(value, dict) and key in value:
        path += (key,)  # point at the name itself
        if not isinstance(value[key], str):
            return Problem("NS103", f"must be a name (text): one of {names}, got {show(value[key])}", path)
    if kind == "union_tag_not_found":
        if initializer:
            return Problem(
                "NS102", "this mapping needs 'init' (an initializer by name) or 'file' (a weight file)", path
            )
        if not isinstance(value, dict):
            return Problem("NS103", f"a layer is a mapping of keys (name, type, neurons, ...), got {show(value)}", path)
        return Problem("NS102", f"every layer needs a 'type': one of {names}", path)
    what = "initializer" if initializer else "layer type"
    if not initializer and ctx["tag"] in blocks:  # a use written like a layer: "did you mean 'slice'?" would mislead
        tag = ctx["tag"]
        return Problem("NS105", f"{tag!r} is a block of this spec, not a layer type: write block: {tag}", path)
    choices = names.split(", ")
    return Problem("NS105", f"unknown {what} {ctx['tag']!r}; {_suggest(ctx['tag'], choices, 'choose one of')}", path)


def _unknown_key(root: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """The path of a key the model does not have, and that model. The key is the user's, whatever it
    is called: one that happens to match a union tag ('float64', 'dense') is not taken for one."""
    path, _, holder = _walk(root, loc[:-1])
    holder = _strip(holder)
    return path + (loc[-1],), holder if _is_model(holder) else None


def _walk(root: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None, Any]:
    """Follow pydantic's `loc` through the model types.

    Returns the path as users see it (union tags such as 'dense' or 'array' dropped), the model
    that holds the last key, and the type expected at the end of the path.
    """
    path: list = []
    parent: type[BaseModel] | None = None
    current: Any = root
    for part in loc:
        current = _strip(current)
        if (
            _is_model(current)
            and isinstance(part, str)
            and part not in current.model_fields
            and _has_tag(current, part)
        ):
            continue  # the tag of a one-member union
        if _is_model(current):
            parent = current
            path.append(part)
            field = current.model_fields.get(part) if isinstance(part, str) else None
            current = field.annotation if field else None
        elif get_origin(current) is list and isinstance(part, int):
            path.append(part)
            current = get_args(current)[0]
        elif _is_union(current):
            current = _member(current, part)  # a union tag: not part of the user's path
        else:
            path.append(part)
            current = None
    return tuple(path), parent, _strip(current)


def _strip(kind: Any) -> Any:
    """Unwrap Annotated[...] and Optional[...] down to the type that matters."""
    while True:
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        elif _is_union(kind) and type(None) in get_args(kind) and len(get_args(kind)) == 2:
            kind = next(a for a in get_args(kind) if a is not type(None))
        else:
            return kind


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _is_union(kind: Any) -> bool:
    return get_origin(kind) in (Union, types.UnionType)


def _has_tag(model: type[BaseModel], tag: str) -> bool:
    return any(
        get_origin(f.annotation) is Literal and tag in get_args(f.annotation) for f in model.model_fields.values()
    )


def _member(union: Any, tag: Any) -> Any:
    for member in get_args(union):
        if get_origin(member) is Annotated and any(isinstance(m, Tag) and m.tag == tag for m in get_args(member)[1:]):
            return member
        base = _strip(member)
        if _is_model(base) and _has_tag(base, tag):
            return base
        if _is_union(base):
            found = _member(base, tag)
            if found is not None:
                return found
    return None


def _length_message(parent: type[BaseModel] | None, path: tuple, ctx: dict, value: Any) -> str:
    got = ctx.get("actual_length", len(value) if hasattr(value, "__len__") else "?")
    # pydantic's context carries only the bound that was crossed; the field knows both.
    field = parent.model_fields.get(path[-1]) if parent and path and isinstance(path[-1], str) else None
    bounds = {type(m).__name__: m for m in field.metadata} if field else {}
    low = getattr(bounds.get("MinLen"), "min_length", ctx.get("min_length"))
    high = getattr(bounds.get("MaxLen"), "max_length", ctx.get("max_length"))
    if low is not None and low == high:
        return f"must have exactly {low} values, got {got}"
    if low is not None and isinstance(got, int) and got < low:
        return f"must have at least {plural(low, 'item')}, got {got}"
    return f"must have at most {plural(high, 'item')}, got {got}"


# Names other tools use for what netspec calls otherwise.
_SYNONYMS = {
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "identity": "linear",
    "none": "linear",
    "gray": "grayscale",
    "grey": "grayscale",
    "greyscale": "grayscale",
    "linear_layer": "dense",
    "fc": "dense",
    "fully_connected": "dense",
}


def closest(word: str, choices: list[str]) -> str | None:
    """The choice `word` most likely misspells (or names under another tool's word), if one is close enough."""
    lowered = word.lower()
    if _SYNONYMS.get(lowered) in choices:
        return _SYNONYMS[lowered]
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def _suggest(word: str, choices: list[str], lead: str) -> str:
    close = closest(word, choices)
    return f"did you mean {close!r}?" if close else f"{lead}: {', '.join(choices)}"


def _did_you_mean(value: Any, choices: list[str]) -> str:
    close = closest(value, choices) if isinstance(value, str) else None
    return f"; did you mean {close!r}?" if close else ""


def show(value: Any) -> str:
    """A received value as users wrote it, short."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"{value[:40]!r} (text)" if len(value) <= 40 else f"{value[:40]!r}... (text)"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, int) and abs(value) > 10**30:
        return f"a number with {len(str(abs(value)))} digits"
    if isinstance(value, (dict, BaseModel)):
        return "a mapping"
    return repr(value)
