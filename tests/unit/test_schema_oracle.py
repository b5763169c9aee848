"""Our specs/ schemas give the same verdict as the official runtime-spec v1.3.0 schemas.

The official schemas and test documents are read at run time from
``<project>/../shared/runtime-spec-v1.3.0`` (never copied into the project);
without them these tests are skipped.

The documents and the mutation machinery are in tests/support/schema_oracle.py.
"""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.schema_oracle import (FULL_CONFIG, FULL_DOCS, HYPO, KINDS, OFFICIAL, SPECS,
                                   enum_lists, exhaustive_variants, mutated_docs,
                                   needs_official, official, official_docs, ours, read_doc)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------------------
# tests


def test_our_specs_are_valid_draft4_schemas():
    from jsonschema import Draft4Validator

    names = sorted(p.name for p in SPECS.glob("*.json"))
    assert names == sorted(
        ["config-schema.json", "config-linux.json", "defs.json", "defs-linux.json",
         "state-schema.json", "features-schema.json", "features-linux.json"]
    )
    for name in names:
        doc = json.loads((SPECS / name).read_text())
        Draft4Validator.check_schema(doc)
        assert doc.get("$schema") == "http://json-schema.org/draft-04/schema#", name


@needs_official
def test_our_specs_are_not_copies_of_the_official_files():
    for p in SPECS.glob("*.json"):
        theirs = OFFICIAL / p.name
        if theirs.exists():
            assert json.loads(p.read_text()) != json.loads(theirs.read_text()), p.name
            assert p.read_bytes() != theirs.read_bytes(), p.name


@needs_official
@pytest.mark.parametrize("kind,good,path", official_docs())
def test_official_test_documents_same_verdict(kind, good, path):
    doc = read_doc(path)
    if doc is None:
        # Not even JSON (invalid-json.json): rejected before any schema is involved.
        assert not good
        if kind == "config":
            from pyrunc.errors import ConfigError
            from pyrunc.config.load import parse_config

            with pytest.raises(ConfigError):
                parse_config(Path(path).read_bytes(), str(path))
        return
    assert official()[kind].is_valid(doc) is good
    assert ours()[kind].is_valid(doc) is good


@needs_official
@pytest.mark.parametrize("kind", KINDS)
def test_full_documents_are_valid_under_both(kind):
    assert official()[kind].is_valid(FULL_DOCS[kind])
    assert ours()[kind].is_valid(FULL_DOCS[kind])


def _same_verdict(kind, doc):
    theirs = official()[kind].is_valid(doc)
    mine = ours()[kind].is_valid(doc)
    assert mine == theirs, (
        f"verdicts differ (official {theirs}, ours {mine}) for {json.dumps(doc)[:2000]}\n"
        f"official errors: {[e.message for e in official()[kind].iter_errors(doc)][:5]}\n"
        f"our errors: {[e.message for e in ours()[kind].iter_errors(doc)][:5]}"
    )
    return theirs


@needs_official
@pytest.mark.parametrize("kind", KINDS)
def test_every_field_mutated_same_verdict(kind):
    docs = exhaustive_variants(FULL_DOCS[kind], official()[kind].is_valid, enum_lists(OFFICIAL))
    verdicts = [_same_verdict(kind, d) for d in docs]
    # Thousands of variants for config; both outcomes well represented.
    assert len(docs) > (8000 if kind == "config" else 200)
    assert verdicts.count(True) > len(docs) // 5 and verdicts.count(False) > len(docs) // 5


@needs_official
@pytest.mark.parametrize("name", ["freebsd-example.json", "zos-example.json", "linux-netdevice.json", "linux-rdma.json"])
def test_official_examples_mutated_same_verdict(name):
    doc = read_doc(OFFICIAL / "test" / "config" / "good" / name)
    docs = exhaustive_variants(doc, official()["config"].is_valid, enum_lists(OFFICIAL))
    assert len(docs) > 100
    for d in docs:
        _same_verdict("config", d)




@needs_official
@HYPO
@given(mutated_docs(FULL_CONFIG))
def test_generated_config_variants_same_verdict(doc):
    _same_verdict("config", doc)


@needs_official
@settings(HYPO, max_examples=60)
@given(st.sampled_from(["state", "features"]).flatmap(lambda k: st.tuples(st.just(k), mutated_docs(FULL_DOCS[k]))))
def test_generated_state_and_features_variants_same_verdict(kind_doc):
    kind, doc = kind_doc
    _same_verdict(kind, doc)


@needs_official
def test_schema_problems_agree_with_verdict():
    """pyrunc.config.schema.messages.schema_problems is empty exactly when the schema says valid."""
    from pyrunc.config.schema.messages import schema_problems

    docs = exhaustive_variants(FULL_CONFIG, official()["config"].is_valid)[::40]
    for doc in docs:
        assert (schema_problems(doc) == []) == official()["config"].is_valid(doc)
