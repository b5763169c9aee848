"""The official runtime-spec v1.3.0 JSON schemas (in ../shared), through jsonschema:
an oracle independent of pyrunc's own checker."""
import json

import pytest

from support.paths import SCHEMA_DIR


def official_validator(root_name):
    """Draft-4 validator for one of the official schemas, $refs resolved in SCHEMA_DIR
    (skips when the spec text is absent)."""
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"official runtime-spec schemas not found at {SCHEMA_DIR}")
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((path.name, referencing.Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = referencing.Registry().with_resources(resources)
    schema = json.loads((SCHEMA_DIR / root_name).read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def schema_errors(validator, doc):
    """["path/to/field: message", ...] for doc."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
