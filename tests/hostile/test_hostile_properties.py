"""Property tests: mutated specs give a valid spec or a located NetspecError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from references import mutate

import netspec

BASE = yaml.safe_load((Path(__file__).parents[2] / "specs" / "digits-cnn.yaml").read_text())
FOLDER = Path(tempfile.mkdtemp(prefix="netspec-properties-"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def paths(document, prefix=()):
    """Every place in the document: mapping keys and list positions."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, (*prefix, index))


PLACES = [p for p in paths(BASE) if p]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    place=st.sampled_from(PLACES),
    action=st.sampled_from(["delete", "replace", "rename", "nest"]),
    value=values,
    name=st.text(min_size=1, max_size=10),
)
def test_a_mutated_spec_is_valid_or_a_located_error(place, action, value, name):
    document = mutate(BASE, place, action, value, name)
    path = FOLDER / "spec.yaml"
    try:
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
    except (yaml.YAMLError, UnicodeEncodeError):
        return  # not something YAML can write: nothing to read back
    for problem in netspec.check(path):
        assert problem.code.startswith("NS") and problem.file == str(path) and problem.line is not None


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_is_a_spec_or_a_located_error(text):
    path = FOLDER / "text.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    for problem in netspec.check(path):
        assert problem.code.startswith("NS") and problem.file == str(path)
