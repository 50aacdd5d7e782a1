"""Read YAML safely into plain Python data, keeping where every value stood in the file.

Built from libyaml's event stream rather than PyYAML's composer or constructor because:
- the composer recurses, and crashes the interpreter on deeply nested input;
- PyYAML keeps the last of duplicate keys silently, reads `1e-3` as text and `yes` as true
  (YAML 1.1); netspec follows YAML 1.2's core schema and reports duplicates;
- aliases are shared by the loader but expanded by validation, so their expanded size is
  counted here, before anything expensive happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

import yaml

from netspec.errors import Problem, SpecError
from netspec.yaml_syntax import syntax_problem

try:  # libyaml's C parser is far faster on long weight lists; the pure one is the fallback.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings a spec may have."""

MAX_EXPANDED_VALUES = 5_000_000
"""Most values a document may hold once every alias is expanded (an alias bomb stops here)."""

_CORE = "tag:yaml.org,2002:"
_NUMBER_START = frozenset("0123456789+-.")  # first characters of every int and float
_WORDS = frozenset(("~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"))
"""The plain scalars that are null or a bool; with the empty one and numbers, all that is not text."""
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def reads_as_text(value: str) -> bool:
    """Whether `value` written as a plain (unquoted) scalar would be read back as text."""
    return not any(pattern.match(value) for pattern in (_NULL, _BOOL, _INT, _FLOAT)) and value != "<<"


@dataclass(slots=True)
class Position:
    """Where a value stands in the file (1-based), and where its children (and a mapping's keys) stand."""

    line: int
    column: int
    items: dict[Any, Position] | list[Position] | None = None
    keys: dict[Any, Position] | None = None


@dataclass
class Source:
    """A parsed YAML document: the data and a map from paths to positions."""

    file: str
    data: Any
    root: Position | None
    text: str = ""

    def position(self, path: tuple, key: bool = False) -> tuple[int, int]:
        """Line and column of the value at `path`, or of its key when `key` is true.

        Parts of the path that are not in the data (such as the names pydantic gives to
        union variants) are skipped, so the deepest existing node is found.
        """
        node, data, found = self.root, self.data, None
        for i, part in enumerate(path):
            if node is None:
                break
            if isinstance(data, dict) and isinstance(part, str) and part in data:
                last = i == len(path) - 1
                if key and last and node.keys and part in node.keys:
                    found = node.keys[part]
                    break
                node, data = node.items.get(part), data[part]
            elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
                node, data = node.items[part], data[part]
            else:
                continue
            found = node
        found = found or self.root
        return (found.line, found.column) if found else (1, 1)

    def locate(self, problem: Problem, key: bool = False) -> Problem:
        return problem.located(self.file, *self.position(problem.path, key))


def read_yaml(text: str, file: str) -> Source:
    """Parse one YAML document into plain data with positions.

    Raises:
        SpecError: syntax errors, tags outside YAML's core schema, duplicate keys, too
            deep nesting, alias cycles, or a document too large once aliases are expanded.
    """
    try:
        parser = _Loader(text)
        try:
            data, root = _Builder(file).build(parser.get_event)
        finally:
            parser.dispose()
    except yaml.MarkedYAMLError as err:
        raise SpecError(syntax_problem(err, file, text)) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        what = f"control character U+{err.character:04X} is not allowed in a spec; remove it"
        raise SpecError(Problem("NS001", what).located(file, line, column)) from None
    except yaml.YAMLError as err:
        raise SpecError(Problem("NS001", " ".join(str(err).split()), file=file)) from None
    return Source(file, data, root, text)


class _Open:
    """A list or mapping whose events are still arriving."""

    __slots__ = ("value", "pos", "anchor", "size", "pending_key", "merges", "is_list")

    def __init__(self, value: Any, pos: Position, anchor: str | None):
        self.value, self.pos, self.anchor = value, pos, anchor
        self.is_list = isinstance(value, list)
        self.size = 1
        self.pending_key: tuple | None = None  # (key, key position) awaiting its value
        self.merges: list[tuple[Any, Position]] = []


class _Builder:
    """Plain data and positions from libyaml's events.

    This loop is most of the time `netspec validate` spends on a spec beyond libyaml's own
    parsing, so the common events (plain scalars into lists and mappings) take the shortest path.
    """

    def __init__(self, file: str):
        self.file = file
        self.anchors: dict[str, tuple[Any, Position, int]] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Open] = []
        self.total = 0  # values so far, every alias counted as all it stands for
        self.result: tuple[Any, Position | None] = (None, None)

    def fail(self, code: str, message: str, mark: Any) -> NoReturn:
        raise SpecError(Problem(code, message).located(self.file, mark.line + 1, mark.column + 1))

    def build(self, next_event) -> tuple[Any, Position | None]:
        documents = 0
        scalar, alias, end_of_stream = yaml.ScalarEvent, yaml.AliasEvent, yaml.StreamEndEvent
        starts = {yaml.SequenceStartEvent: False, yaml.MappingStartEvent: True}
        ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
        while True:
            event = next_event()
            kind = type(event)
            if kind is scalar:
                value = event.value
                if (
                    event.tag is not None
                    or not event.implicit[0]
                    or not value
                    or value[0] in _NUMBER_START
                    or value in _WORDS
                ):
                    value = self.scalar(event)  # plain text such as a name or a key needs no pattern
                mark = event.start_mark
                self.count(1, event)
                self.add(value, Position(mark.line + 1, mark.column + 1), event.anchor, 1, event, event.implicit[0])
            elif kind in starts:
                self.start(event, starts[kind])
            elif kind in ends:
                self.end(event)
            elif kind is alias:
                self.alias(event)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    self.fail("NS001", "a spec file holds one YAML document; remove the second '---'", event.start_mark)
            elif kind is end_of_stream or event is None:
                return self.result

    def check_tag(self, event: Any, allowed: tuple[str, ...]) -> None:
        tag = event.tag
        if tag in (None, "!") or tag in tuple(_CORE + name for name in allowed):
            return
        self.fail(
            "NS002",
            f"tag {tag.replace(_CORE, '!!')} is not allowed; netspec reads plain YAML values only "
            "(numbers, text, true/false, lists and mappings), remove the tag",
            event.start_mark,
        )

    def scalar(self, event: Any) -> Any:
        value, tag = event.value, event.tag
        self.check_tag(event, ("str", "int", "float", "bool", "null"))
        if tag in (None, "!"):
            if not event.implicit[0] or event.style or tag == "!":
                return value  # quoted or '!' scalars are text
            for pattern, kind in ((_NULL, "null"), (_BOOL, "bool"), (_INT, "int"), (_FLOAT, "float")):
                if pattern.match(value):
                    tag = _CORE + kind
                    break
            else:
                return value
        kind = tag[len(_CORE) :]
        try:
            if kind == "null":
                return None
            if kind == "bool":
                if not _BOOL.match(value):
                    raise ValueError
                return value.lower() == "true"
            if kind == "int":
                return int(value, 0) if value.startswith(("0o", "0x")) else int(value)
            if kind == "float":
                return _to_float(value)
        except ValueError:
            self.fail("NS103", f"{value!r} is not a valid !!{kind}", event.start_mark)
        return value

    def start(self, event: Any, is_map: bool) -> None:
        self.check_tag(event, ("map",) if is_map else ("seq",))
        if len(self.stack) >= MAX_DEPTH:
            self.fail("NS004", f"nested more than {MAX_DEPTH} levels deep; a spec never needs that", event.start_mark)
        mark = event.start_mark
        pos = Position(mark.line + 1, mark.column + 1, {} if is_map else [], {} if is_map else None)
        self.stack.append(_Open({} if is_map else [], pos, event.anchor))
        if event.anchor:
            self.open_anchors.add(event.anchor)

    def end(self, event: Any) -> None:
        done = self.stack.pop()
        if not done.is_list:
            self.merge(done)
        if done.anchor:
            self.open_anchors.discard(done.anchor)
        self.count(1, event)  # its contents were counted as they came
        self.add(done.value, done.pos, done.anchor, done.size, event, plain_key=False)

    def alias(self, event: Any) -> None:
        name = event.anchor
        if name in self.open_anchors:
            self.fail("NS004", f"alias *{name} refers to a value that contains it; remove the cycle", event.start_mark)
        if name not in self.anchors:
            self.fail("NS001", f"alias *{name} has no anchor &{name} before it", event.start_mark)
        value, pos, size = self.anchors[name]
        self.count(size, event)
        mark = event.start_mark
        self.add(value, Position(mark.line + 1, mark.column + 1, pos.items, pos.keys), None, size, event, False)

    def count(self, values: int, event: Any) -> None:
        """Add to the running total of values, and stop an alias bomb as it goes off."""
        self.total += values
        if self.total <= MAX_EXPANDED_VALUES:
            return
        culprit = ""
        if isinstance(event, yaml.AliasEvent):
            anchored = self.anchors[event.anchor][1].line
            culprit = f" (alias *{event.anchor} repeats the {values:,} values anchored on line {anchored})"
        self.fail(
            "NS004",
            f"the document holds more than {MAX_EXPANDED_VALUES:,} values once aliases are expanded{culprit}; "
            "move large arrays to a .npy/.npz weight file",
            event.start_mark,
        )

    def add(self, value: Any, pos: Position, anchor: str | None, size: int, event: Any, plain_key: bool) -> None:
        """Put a finished value (counted already) into the list or mapping it belongs to."""
        if anchor:
            self.anchors[anchor] = (value, pos, size)
        if not self.stack:
            self.result = (value, pos)
            return
        parent = self.stack[-1]
        parent.size += size
        if parent.is_list:
            parent.value.append(value)
            parent.pos.items.append(pos)
        elif parent.pending_key is None:
            if isinstance(value, (dict, list)):
                self.fail("NS103", "a key must be a plain value, not a list or mapping", event.start_mark)
            if value == "<<" and plain_key:
                value = _MERGE
            elif not isinstance(value, str):
                shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
                self.fail("NS103", f"keys are text, got {shown}; write it in quotes: '{shown}'", event.start_mark)
            parent.pending_key = (value, pos)
        else:
            key, key_pos = parent.pending_key
            parent.pending_key = None
            if key is _MERGE:
                if parent.merges:
                    self.fail(
                        "NS003",
                        "merge key '<<' is given twice in this mapping; merge a list: <<: [*a, *b]",
                        _Mark(key_pos),
                    )
                parent.merges.append((value, pos))
            elif key in parent.value:
                first = parent.pos.keys[key]
                self.fail(
                    "NS003",
                    f"key {key!r} is given twice in this mapping (first on line {first.line}); keep one",
                    _Mark(key_pos),
                )
            else:
                parent.value[key] = value
                parent.pos.items[key] = pos
                parent.pos.keys[key] = key_pos

    def merge(self, mapping: _Open) -> None:
        """Apply YAML merge keys (`<<: *defaults`): keys written in the mapping win."""
        for value, pos in mapping.merges:
            sources = (
                [(value, pos)]
                if isinstance(value, dict)
                else list(zip(value, pos.items or []))
                if isinstance(value, list)
                else []
            )
            if not sources or not all(isinstance(v, dict) for v, _ in sources):
                self.fail("NS103", "a merge key '<<' takes a mapping or a list of mappings", _Mark(pos))
            for source, source_pos in sources:
                for key, item in source.items():
                    if key not in mapping.value:
                        mapping.value[key] = item
                        mapping.pos.items[key] = source_pos.items[key]
                        mapping.pos.keys[key] = source_pos.keys[key]


_MERGE = object()


def _to_float(text: str) -> float:
    """YAML 1.2 floats, including .inf, -.inf and .nan (refused later as non-finite)."""
    lowered = text.lower()
    if lowered.endswith((".inf", ".nan")):
        return float(lowered.replace(".", ""))
    return float(text)


class _Mark:
    """Adapts a Position to the (0-based) mark interface `fail` takes."""

    def __init__(self, pos: Position):
        self.line, self.column = pos.line - 1, pos.column - 1
