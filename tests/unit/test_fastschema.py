"""pyrunc.config.schema.compiler gives the same verdict as jsonschema's Draft4Validator.

Checked on our specs/ (official test documents, every field of realistic full
documents mutated, random multi-mutations), on the official schemas (which use
anyOf and $ref siblings), and keyword by keyword on random JSON values.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyrunc.config import specs_dir

from pyrunc.config.schema import compiler as fastschema, messages as schema_messages

pytestmark = pytest.mark.unit

from support import schema_oracle as oracle

REPO = oracle.REPO
SPECS = oracle.SPECS
OFFICIAL = oracle.OFFICIAL
needs_official = oracle.needs_official

_HYPO = oracle.HYPO


def ours_js(kind):
    return oracle.ours()[kind]


def _same(kind, doc):
    fast = fastschema.is_valid(doc, kind)
    slow = ours_js(kind).is_valid(doc)
    assert fast == slow, f"fastschema says {fast}, jsonschema says {slow}: {json.dumps(doc)[:2000]}"
    return fast


# ---------------------------------------------------------------------------
# our schemas


def test_specs_dir_is_the_checkout():
    assert Path(specs_dir()) == REPO / "specs"
    assert (Path(specs_dir()) / "config-schema.json").is_file()


def test_compiled_checks_are_current():
    """pyrunc/config/schema/_checks.py is what the generator makes of specs/ now (else:
    python -m pyrunc.config.schema.compiler > pyrunc/config/schema/_checks.py)."""
    current = (REPO / "pyrunc" / "config" / "schema" / "_checks.py").read_text()
    assert current == fastschema.generate_module(SPECS)


def _specs_copy(tmp_path, add_property=None):
    """A copy of specs/ in tmp_path; add_property: (name, schema) added to
    config-linux.json's linux.resources."""
    out = tmp_path / "specs"
    out.mkdir(parents=True)
    for f in Path(SPECS).iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    if add_property:
        doc = json.loads((out / "config-linux.json").read_text())
        doc["definitions"]["resources"]["properties"][add_property[0]] = add_property[1]
        (out / "config-linux.json").write_text(json.dumps(doc, indent=4))
    return out


def _check_command(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pyrunc.config.schema.compiler", "--check", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_check_command_says_whether_the_compiled_checks_are_current(tmp_path):
    r = _check_command()
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # specs that differ from the ones compiled: exit 1 and one line saying so
    changed = _specs_copy(tmp_path, ("newKnob", {"$ref": "defs.json#/definitions/u64"}))
    r = _check_command(str(changed))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "_checks.py is not current" in r.stderr, r.stderr
    assert "python -m pyrunc.config.schema.compiler > pyrunc/config/schema/_checks.py" in r.stderr


@pytest.mark.parametrize("schema", [
    {"$ref": "defs.json#/definitions/u64"},
    {"type": "object", "properties": {"limit": {"$ref": "defs.json#/definitions/u64"},
                                      "mode": {"type": "string", "enum": ["a", "b"]}}},
])
def test_one_new_property_is_a_small_diff(tmp_path, schema):
    """Names derive from the schema node's JSON pointer, not from the order nodes are
    met: adding one property to specs/ changes a few lines, not every name after it
    (the generator before this numbered its functions: ~1000 changed lines)."""
    import difflib

    before = fastschema.generate_module(_specs_copy(tmp_path / "a"))
    assert before == fastschema.generate_module(SPECS)
    after = fastschema.generate_module(_specs_copy(tmp_path / "b", ("newKnob", schema)))
    changed = [ln for ln in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
               if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert 0 < len(changed) < 30, "\n".join(changed)
    assert any("_check__linux__resources__newKnob" in ln for ln in changed) or \
        any("('newKnob', _check__defs__u64)" in ln for ln in changed), "\n".join(changed)


def test_names_follow_the_json_pointer():
    source = (REPO / "pyrunc" / "config" / "schema" / "_checks.py").read_text()
    # config-linux.json#/definitions/resources/properties/pids
    assert "\ndef _check__linux__resources__pids(x):\n" in source or \
        "\n_check__linux__resources__pids = " in source
    assert "_check__config = " in source or "\ndef _check__config(x):\n" in source


@pytest.mark.parametrize("kind", oracle.KINDS)
def test_runtime_compiled_validator_agrees_on_full_documents(kind):
    """The same generator, compiled at run time for a schema directory (the engine the
    keyword tests below exercise), and the ahead-of-time module agree."""
    v = fastschema.Validator(SPECS, oracle.ROOT_FILES[kind])
    assert v.is_valid(oracle.FULL_DOCS[kind]) is fastschema.is_valid(oracle.FULL_DOCS[kind], kind) is True
    assert v.is_valid({}) is fastschema.is_valid({}, kind) is False


@pytest.mark.parametrize("kind", oracle.KINDS)
def test_every_reachable_schema_compiles(kind):
    v = fastschema.Validator(SPECS, oracle.ROOT_FILES[kind])
    assert v.compile_all() > (60 if kind == "config" else 2)


@pytest.mark.parametrize("kind", oracle.KINDS)
def test_full_documents_valid(kind):
    assert fastschema.is_valid(oracle.FULL_DOCS[kind], kind)
    assert schema_messages.is_valid_fast(oracle.FULL_DOCS[kind], kind)


@needs_official
@pytest.mark.parametrize("kind,good,path", oracle.official_docs())
def test_official_test_documents(kind, good, path):
    doc = oracle.read_doc(path)
    if doc is None:
        return  # not JSON at all: no schema involved
    assert fastschema.is_valid(doc, kind) is good
    assert ours_js(kind).is_valid(doc) is good


@pytest.mark.parametrize("kind", oracle.KINDS)
def test_every_field_mutated_same_verdict(kind):
    docs = oracle.exhaustive_variants(
        oracle.FULL_DOCS[kind], lambda d: fastschema.is_valid(d, kind), oracle.enum_lists(SPECS)
    )
    if kind == "config":
        docs = docs[::2]  # test_schema_oracle.py runs all of them against jsonschema
    verdicts = [_same(kind, d) for d in docs]
    assert verdicts.count(True) > len(docs) // 5 and verdicts.count(False) > len(docs) // 5


@_HYPO
@given(oracle.mutated_docs(oracle.FULL_CONFIG))
def test_generated_config_variants_same_verdict(doc):
    _same("config", doc)


@settings(_HYPO, max_examples=60)
@given(st.sampled_from(["state", "features"]).flatmap(lambda k: st.tuples(st.just(k), oracle.mutated_docs(oracle.FULL_DOCS[k]))))
def test_generated_state_and_features_variants_same_verdict(kind_doc):
    _same(*kind_doc)


def test_non_object_documents():
    for doc in (None, [], "x", 1, 1.5, True, [{}]):
        for kind in oracle.KINDS:
            assert fastschema.is_valid(doc, kind) is False
            assert ours_js(kind).is_valid(doc) is False


# ---------------------------------------------------------------------------
# the official schemas, as a second body of schemas for the engine


@needs_official
@pytest.mark.parametrize("name", ["spec-example.json", "freebsd-example.json", "zos-example.json"])
def test_engine_on_official_schemas(name):
    fast = fastschema.Validator(OFFICIAL, "config-schema.json")
    slow = oracle.official()["config"]
    doc = oracle.read_doc(OFFICIAL / "test" / "config" / "good" / name)
    docs = oracle.exhaustive_variants(doc, slow.is_valid, oracle.enum_lists(OFFICIAL))
    if name == "spec-example.json":
        docs = docs[::8]
    for d in docs:
        assert fast.is_valid(d) == slow.is_valid(d), json.dumps(d)[:2000]


# ---------------------------------------------------------------------------
# keyword semantics against jsonschema on random values

KEYWORD_SCHEMAS = {
    "integer.json": {"type": "integer"},
    "number.json": {"type": "number"},
    "string-or-null.json": {"type": ["string", "null"]},
    "boolean.json": {"type": "boolean"},
    "object-array.json": {"type": ["object", "array"]},
    "enum-mixed.json": {"enum": [1, "1", True, None, [1], {"a": 1}]},
    "enum-zero.json": {"enum": [0, False]},
    "enum-float.json": {"enum": [1.0, "a"]},
    "enum-strings.json": {"enum": ["a", "b"]},
    "range.json": {"minimum": 0, "maximum": 10},
    "range-exclusive.json": {"minimum": 0, "exclusiveMinimum": True, "maximum": 1.5, "exclusiveMaximum": True},
    "range-big.json": {"type": "integer", "minimum": -9223372036854775808, "maximum": 18446744073709551615},
    "pattern.json": {"pattern": "^a+$"},
    "pattern-search.json": {"pattern": "b"},
    "length.json": {"minLength": 2, "maxLength": 3},
    "items.json": {"items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    "tuple.json": {"items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False},
    "tuple-extra.json": {"items": [{"type": "string"}], "additionalItems": {"type": "boolean"}},
    "unique.json": {"uniqueItems": True},
    "object.json": {"properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False},
    "pattern-props.json": {
        "patternProperties": {"^x": {"type": "string"}, ".": {"type": ["string", "integer"]}},
        "additionalProperties": {"type": "null"},
    },
    "map.json": {"type": "object", "additionalProperties": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "props-count.json": {"minProperties": 1, "maxProperties": 2},
    "anyof.json": {"anyOf": [{"type": "string"}, {"minimum": 5}]},
    "oneof.json": {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
    "allof.json": {"allOf": [{"type": "object"}, {"required": ["b"]}]},
    "not.json": {"not": {"type": "array"}},
    "ref-sibling.json": {"$ref": "#/definitions/a", "type": "string", "definitions": {"a": {"type": "integer"}}},
    "recursive.json": {
        "$ref": "#/definitions/node",
        "definitions": {
            "node": {
                "type": "object",
                "properties": {"next": {"$ref": "#/definitions/node"}, "v": {"type": "integer"}},
            }
        },
    },
    "cross-file.json": {"properties": {"x": {"$ref": "other.json#/definitions/small"}}, "items": {"$ref": "other.json"}},
    "other.json": {"type": ["integer", "array"], "definitions": {"small": {"type": "integer", "maximum": 3}}},
}


@pytest.fixture(scope="module")
def keyword_validators(tmp_path_factory):
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    d = tmp_path_factory.mktemp("schemas")
    for name, schema in KEYWORD_SCHEMAS.items():
        (d / name).write_text(json.dumps(schema))
    registry = Registry().with_resources(
        (name, Resource.from_contents(s, default_specification=DRAFT4)) for name, s in KEYWORD_SCHEMAS.items()
    )
    return [
        (name, fastschema.Validator(d, name), Draft4Validator(schema, registry=registry))
        for name, schema in KEYWORD_SCHEMAS.items()
    ]


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.sampled_from([0, 1, -1, 1.0, 0.0, 1.5, 3, 5, 10, 10.0, 2**64 - 1, 2**64, -(2**63) - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "a", "aa", "aaa", "a\n", "b", "ab", "1", "x", "xy", "é"])
    | st.text(max_size=4)
)
_keys = st.sampled_from(["a", "b", "x", "xy", "next", "v", "name", "", "\n", "1"]) | st.text(max_size=3)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_values)
@example([1, 1.0])
@example([1, True])
@example([0, False])
@example([[1], [True]])
@example([{"a": 1}, {"a": 1.0}])
@example({"a": 1, "b": None})
@example({"next": {"next": {"v": "x"}}})
@example({"x": 5})
@example("a\n")
@example(1.0)
@example(True)
@example(2**64)
@example(-(2**63) - 1)
def test_keywords_same_verdict_as_jsonschema(keyword_validators, value):
    for name, fast, slow in keyword_validators:
        assert fast.is_valid(value) == slow.is_valid(value), (name, value)


@pytest.mark.parametrize(
    "schema",
    [{"format": "email"}, {"dependencies": {"a": ["b"]}}, {"multipleOf": 2}, {"type": "float"}],
)
def test_unsupported_keywords_are_refused(tmp_path, schema):
    (tmp_path / "s.json").write_text(json.dumps(schema))
    with pytest.raises(fastschema.SchemaError):
        fastschema.Validator(tmp_path, "s.json").is_valid(1)


def test_bad_references_are_refused(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"properties": {"a": {"$ref": "missing.json#/x"}}}))
    v = fastschema.Validator(tmp_path, "s.json")
    assert v.is_valid({"b": 1})  # references resolve lazily, like jsonschema
    with pytest.raises(fastschema.SchemaError):
        v.is_valid({"a": 1})


# ---------------------------------------------------------------------------
# cost


def _run(code):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_fast_path_never_imports_jsonschema():
    code = (
        "import json, sys\n"
        "from pyrunc.config import validate\nfrom pyrunc.config.schema import messages as schema_messages\n"
        f"doc = json.loads({json.dumps(json.dumps(oracle.FULL_CONFIG))})\n"
        "assert schema_messages.is_valid_fast(doc)\n"
        "assert not schema_messages.is_valid_fast(dict(doc, ociVersion=1))\n"
        "assert validate.check(doc, source='config.json') is doc\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('jsonschema', 'referencing', 'rpds', 'attrs')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "ok"
    assert "jsonschema" not in r.stderr


def test_compiler_imports_no_validator_library():
    """The compiler is light: what it costs is in bench/importtime.py, not a timed test."""
    r = _run("import pyrunc.config.schema.compiler")
    assert r.returncode == 0, r.stderr[-2000:]
    mods = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert "pyrunc.config.schema.compiler" in mods  # the log is there
    heavy = {m for m in mods if m.split(".")[0] in ("jsonschema", "referencing", "rpds", "attrs")}
    assert heavy == set()
