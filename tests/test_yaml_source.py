"""YAML reading: YAML 1.2 scalars, duplicate keys, tags, aliases, nesting, syntax errors, positions."""

from __future__ import annotations

import tracemalloc

import pytest

from netspec.errors import SpecError
from netspec.yaml_source import MAX_DEPTH, read_yaml


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        read_yaml(text, "f.yaml")
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def test_scalars_follow_yaml_1_2_core_schema():
    data = read_yaml("a: 1e-3\nb: 2.5E+2\nc: yes\nd: no\ne: on\nf: true\ng: ~\nh: '1'\ni: 0x1f\nj: -7\n", "f").data
    assert data == {
        "a": 0.001,
        "b": 250.0,
        "c": "yes",
        "d": "no",
        "e": "on",
        "f": True,
        "g": None,
        "h": "1",
        "i": 31,
        "j": -7,
    }
    assert isinstance(data["a"], float) and isinstance(data["j"], int)


def test_infinities_and_nan_are_read_as_floats_for_validation_to_refuse():
    data = read_yaml("a: [.inf, -.inf, .nan, .5]", "f").data["a"]
    assert data[0] == float("inf") and data[1] == float("-inf") and data[2] != data[2] and data[3] == 0.5


def test_duplicate_key_names_both_lines():
    assert (
        error_of("a: 1\nb: 2\na: 3\n")
        == "f.yaml:3:1: NS003 key 'a' is given twice in this mapping (first on line 1); keep one"
    )


def test_duplicate_key_in_nested_flow_mapping():
    assert error_of("l:\n  - {n: 1, n: 2}\n").startswith("f.yaml:2:12: NS003 key 'n' is given twice")


@pytest.mark.parametrize(
    "text, tag",
    [
        ("x: !!python/object/apply:os.system [touch /tmp/netspec-pwned]", "!!python/object/apply:os.system"),
        ("x: !!binary aGVsbG8=", "!!binary"),
        ("x: !!set {a: null}", "!!set"),
        ("x: !custom 3", "!custom"),
    ],
)
def test_tags_outside_the_core_schema_are_refused(text, tag):
    assert error_of(text) == (
        f"f.yaml:1:4: NS002 tag {tag} is not allowed; netspec reads plain YAML values only "
        "(numbers, text, true/false, lists and mappings), remove the tag"
    )


def test_core_tags_are_honoured():
    assert read_yaml("a: !!str 12\nb: !!float 3\n", "f").data == {"a": "12", "b": 3.0}


SPEC_HEAD = "version: 1\nname: s\ninput: {shape: [4]}\nclasses: [a, b]\nlayers:\n"


@pytest.mark.parametrize(
    "text, message",
    [
        # A key indented one space less than its siblings: libyaml notices it on line 8.
        (
            SPEC_HEAD + "  h:\n    type: dense\n   neurons: 3\n",
            "f.yaml:8:4: NS001 while parsing a block mapping at line 6, column 3: did not find expected key; "
            "check the brackets, quotes, colons and indentation from line 6 to here",
        ),
        (
            SPEC_HEAD + "  - name: h\n    type: dense\n   neurons: 3\n",
            "f.yaml:8:4: NS001 while parsing a block collection at line 6, column 3: did not find expected '-' "
            "indicator; check the brackets, quotes, colons and indentation from line 6 to here",
        ),
        # A bracket never closed: noticed at the ':' of the next key.
        (
            "a: [1, 2\nb: 3\n",
            "f.yaml:2:2: NS001 while parsing a flow sequence at line 1, column 4: did not find expected ',' or ']'; "
            "check the brackets, quotes, colons and indentation from line 1 to here",
        ),
        # ... and on the same line, at the end of a file with no final newline.
        (
            "a: [1, 2",
            "f.yaml:1:9: NS001 while parsing a flow sequence at line 1, column 4: did not find expected ',' or ']'; "
            "check the brackets, quotes, colons and indentation here",
        ),
        # A missing ':', or one with no space after it, is noticed at the next line: placed at the key,
        # where the fix goes, with the fix.
        (
            "a: 1\nb:\n  - name: x\n    neurons 4\n    type: dense\n",
            "f.yaml:4:5: NS001 while scanning a simple key at line 4, column 5: could not find expected ':'; "
            "a key needs ': ' (a colon, then a space) before its value: write 'neurons: 4'",
        ),
        (
            "a: 1\nb:\n  - name: x\n    neurons:3\n    type: dense\n",
            "f.yaml:4:5: NS001 while scanning a simple key at line 4, column 5: could not find expected ':'; "
            "a key needs ': ' (a colon, then a space) before its value: write 'neurons: 3'",
        ),
        # An unclosed quote runs to the end of the file (libyaml says line 3, which this file does not
        # have): placed where the quote opens.
        (
            "a: 'open\nb: 2\n",
            "f.yaml:1:4: NS001 while scanning a quoted scalar at line 1, column 4: found unexpected end of stream; "
            "the quote ' opened here is never closed: end the value with '",
        ),
        (
            "a: b: c\n",
            "f.yaml:1:5: NS001 mapping values are not allowed in this context; "
            "check the brackets, quotes, colons and indentation here",
        ),
    ],
)
def test_syntax_error_is_placed_where_the_parser_noticed_it(text, message):
    # Editors and GitHub annotations jump to file:line:col; the construct being read, and where it
    # started, stay in the message to look back to.
    assert error_of(text) == message


def test_tabs_and_control_characters():
    assert error_of("a:\n\t- 1\n") == "f.yaml:2:1: NS001 a tab cannot indent YAML; indent with spaces"
    assert error_of(SPEC_HEAD + "  h:\n    type: dense\n\tneurons: 3\n") == (
        "f.yaml:8:1: NS001 a tab cannot indent YAML; indent with spaces"
    )
    assert error_of("a: [b]\x07\n") == "f.yaml:1:7: NS001 control character U+0007 is not allowed in a spec; remove it"


def test_second_document_is_refused():
    assert error_of("a: 1\n---\nb: 2\n").startswith("f.yaml:2:1: NS001 a spec file holds one YAML document")


def test_anchors_aliases_and_merge_keys_are_supported_with_positions():
    text = "base: &d {type: dense, neurons: 4}\nl:\n  - <<: *d\n    name: x\n  - {<<: *d, neurons: 3}\n"
    source = read_yaml(text, "f")
    assert source.data["l"] == [{"name": "x", "type": "dense", "neurons": 4}, {"neurons": 3, "type": "dense"}]
    assert source.position(("l", 1, "neurons")) == (5, 23)  # written in the mapping itself
    assert source.position(("l", 0, "type")) == (1, 17)  # merged: where the anchor's value stands
    assert source.position(("l", 0, "name"), key=True) == (4, 5)


def test_alias_cycle_is_refused():
    assert (
        error_of("a: &x [1, *x]\n")
        == "f.yaml:1:11: NS004 alias *x refers to a value that contains it; remove the cycle"
    )


def test_alias_bomb_is_refused_at_the_alias_with_little_memory():
    lines = ["a: &a [" + ", ".join(["lol"] * 9) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    tracemalloc.start()
    try:
        message = error_of("\n".join(lines))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # expanded, it would be 48 million values
    # Expanded sizes: a = 10 values, b = 1 + 9*10 = 91, c = 820, d = 7,381, e = 66,430, f = 597,871,
    # g = 5,380,840: the running total passes 5,000,000 inside g's list, on line 7.
    assert message.startswith("f.yaml:7:") and "NS004 the document holds more than 5,000,000 values" in message


def test_deep_nesting_is_refused():
    message = error_of("[" * 100)
    assert (
        message == f"f.yaml:1:{MAX_DEPTH + 1}: NS004 nested more than {MAX_DEPTH} levels deep; a spec never needs that"
    )


def test_very_deep_nesting_does_not_crash_the_interpreter():
    # PyYAML's own composer recursed into a segmentation fault here. Newer libyaml builds stop at
    # depth 1,000 by themselves (NS001) before netspec's check sees the events; either is a clean error.
    message = error_of("[" * 100_000)
    assert message.startswith("f.yaml:1:") and (
        "NS004 nested more than" in message or "exceeded maximum nesting depth" in message
    )


def test_position_skips_path_parts_missing_from_the_data():
    source = read_yaml("layers:\n  - type: dense\n    neurons: 0\n", "f")
    assert source.position(("layers", 0, "dense", "neurons")) == (3, 14)
    assert source.position(("layers", 0, "nonexistent")) == (2, 5)
    assert source.position(()) == (1, 1)


def test_a_second_merge_key_is_a_duplicate():
    assert error_of("d: &d {a: 1}\ne: &e {b: 2}\nm:\n  <<: *d\n  <<: *e\n") == (
        "f.yaml:5:3: NS003 merge key '<<' is given twice in this mapping; merge a list: <<: [*a, *b]"
    )
    assert read_yaml("d: &d {a: 1}\ne: &e {a: 2, b: 2}\nm: {<<: [*d, *e]}\n", "f").data["m"] == {"a": 1, "b": 2}


def test_keys_must_be_text():
    assert error_of("netspec: 1\n1: x\n") == "f.yaml:2:1: NS103 keys are text, got 1; write it in quotes: '1'"
    assert error_of("true: x\n") == "f.yaml:1:1: NS103 keys are text, got true; write it in quotes: 'true'"


def test_bad_core_tag_values():
    assert error_of("a: !!int x1\n") == "f.yaml:1:4: NS103 'x1' is not a valid !!int"
    assert error_of("a: !!bool yes\n") == "f.yaml:1:4: NS103 'yes' is not a valid !!bool"
    assert error_of("a: {<<: 3}\n") == "f.yaml:1:9: NS103 a merge key '<<' takes a mapping or a list of mappings"
