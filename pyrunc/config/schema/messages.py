"""The JSON schema's problems of a document, worded: jsonschema's Draft4Validator over
the project's specs/ (~120 ms to import: only when a document is invalid, or for the
linter), each problem ``"<JSON pointer>: <message>"`` (the document root is ``/``).
The verdict alone comes from the compiled checks (compiler.py), without jsonschema.
"""

import os

from pyrunc.errors import ConfigError
from pyrunc.util.jsonutil import loads
from pyrunc.config.schema.compiler import SCHEMA_FILES as _ROOTS  # the same roots as the compiled checks
from pyrunc.config.problems import one_line, pointer, show, sort_problems
from pyrunc.config import specs_dir

__all__ = ["is_valid_fast", "schema_problems"]


_SPEC_FILES = (
    "config-schema.json",
    "config-linux.json",
    "defs.json",
    "defs-linux.json",
    "state-schema.json",
    "features-schema.json",
    "features-linux.json",
)
# ---------------------------------------------------------------------------
# schema validation with jsonschema (slow import; only when messages are needed)

_validators = {}


def _jsonschema_validator(schema):
    v = _validators.get(schema)
    if v is not None:
        return v
    if schema not in _ROOTS:
        raise ValueError(f"unknown schema {schema!r}; expected one of {sorted(_ROOTS)}")
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    directory = specs_dir()
    docs = {}
    for name in _SPEC_FILES:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                docs[name] = loads(f.read())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load JSON schema {path}: {e}") from None
    registry = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT4)) for name, doc in docs.items()
    )
    root = _ROOTS[schema]
    root = {"$ref": root} if "#" in root else docs[root]
    v = _validators[schema] = Draft4Validator(root, registry=registry)
    return v


def _describe(error):
    """(path tuple, message) pairs for one jsonschema ValidationError."""
    path = tuple(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    inst = error.instance
    if kind in ("anyOf", "oneOf") and error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        if best is not None:
            return _describe(best)
    if kind == "type":
        types = value if isinstance(value, list) else [value]
        return [(path, f"{show(inst)} is not of type {' or '.join(show(t) for t in types)}")]
    if kind == "enum":
        return [(path, f"{show(inst)} is not one of {show(value, limit=400)}")]
    if kind == "required":
        missing = [name for name in value if isinstance(inst, dict) and name not in inst]
        return [(path, f"{show(name)} is a required property") for name in missing]
    if kind == "pattern":
        return [(path, f"{show(inst)} does not match {show(value)}")]
    if kind == "minimum":
        excl = error.schema.get("exclusiveMinimum", False)
        return [(path, f"{show(inst)} is less than {'or equal to ' if excl else ''}the minimum of {value}")]
    if kind == "maximum":
        excl = error.schema.get("exclusiveMaximum", False)
        return [(path, f"{show(inst)} is greater than {'or equal to ' if excl else ''}the maximum of {value}")]
    if kind == "minItems":
        if value == 1:
            return [(path, "must contain at least one entry")]
        return [(path, f"must contain at least {value} entries, not {len(inst)}")]
    if kind == "maxItems":
        return [(path, f"must contain at most {value} entries, not {len(inst)}")]
    return [(path, " ".join(error.message.split()))]


def schema_problems(config, schema="config") -> list:
    """Problems of ``config`` under the project's JSON schema ``schema``.

    ``schema`` is "config", "state", "features", "process" (exec --process) or
    "resources" (update --resources).  Each problem is
    ``"<pointer>: <message>"``; the list is sorted and free of duplicates.
    """
    v = _jsonschema_validator(schema)  # (ValueError for an unknown schema)
    if is_valid_fast(config, schema):
        return []  # the same verdict, without jsonschema's ~0.25 ms an array entry
    problems = []
    for error in v.iter_errors(config):
        for path, message in _describe(error):
            problems.append(one_line(f"{pointer(*path)}: {message}"))
    return sort_problems(problems)


def is_valid_fast(config, schema="config") -> bool:
    """Schema verdict without importing jsonschema (same verdict as schema_problems() == [])."""
    from pyrunc.config.schema._checks import CHECKS  # the compiler's output for specs/

    return CHECKS[schema](config)
