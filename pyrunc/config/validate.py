"""ONE validation pipeline for every document pyrunc reads: config.json (create, run,
`pyrunc validate`), exec's --process and update's --resources.

    schema  ->  runc compatibility  ->  semantic checks

- schema: the compiled checks (schema/_checks.py, made by schema/compiler.py) give the verdict;
  jsonschema (schema/messages.py, ~120 ms to import) only words the problems of an
  invalid document.
- runc compatibility (compat.py): what runc accepts outside the schema and the spec's
  MUST clauses, rewritten in place into runc's meaning, each change a note. A drop-in
  is never stricter than runc at create; `pyrunc validate` shows the notes as warnings.
- semantic checks, by area: semantic.py (config.json: document, then process_checks,
  mount_checks, namespace_checks, resource_checks, linux_checks); process_checks alone
  for a process document; none for resources (the schema only, as runc's decoding).

check() is what create, exec and update call: a document that passes the schema and the
semantic checks as it is costs only those (compat is not even imported); one that fails
gets runc's reading first and is checked again. problems() is the linter's.

The one place of lazy imports for validation: this module imports only the standard
library, pyrunc.errors and problems.py at its top, and each step's module when that step
runs for that kind, so that exec (a process document) never loads semantic.py, and no
valid document loads jsonschema or compat.py.
"""
from pyrunc.errors import ConfigError
from pyrunc import log
from pyrunc.config.load import config_path, load_config

KINDS = ("config", "process", "resources")


def _schema_valid(doc, kind):
    from pyrunc.config.schema._checks import CHECKS  # the schema compiler's output for specs/

    return CHECKS[kind](doc)


def _schema_problems(doc, kind):
    if _schema_valid(doc, kind):
        return []
    from pyrunc.config.schema.messages import schema_problems

    return schema_problems(doc, kind)


def _runc_compat(doc, kind, bundle):
    """Normalise doc in place to runc's meaning; the notes."""
    if kind == "resources":
        return []
    from pyrunc.config.compat import runc_compat

    if kind == "config":
        return runc_compat(doc, bundle)
    # A process document is config.json's process: the same rules, its notes only.
    return [n.removeprefix("/process") for n in runc_compat({"process": doc}) if n.startswith("/process/")]


def _semantic_problems(doc, kind, bundle, strict):
    if kind == "config":
        from pyrunc.config.semantic.checks import semantic_problems

        return semantic_problems(doc, bundle, strict)
    if kind == "process":
        from pyrunc.config.semantic.process import process_problems

        return process_problems(doc)
    return []


def problems(doc, kind="config", *, bundle=None, compat=True, strict=False, schema_only=False):
    """(problems, notes) of doc, a config.json ("config"), a process ("process") or a
    linux.resources ("resources") document: the schema's problems first, then the
    semantic checks' (each ``"<JSON pointer>: <message>"``), after runc's reading of doc
    (compat=True: doc is changed in place; notes: what was taken with runc's meaning).
    strict: also what runc accepts as it is (the version, empty annotation keys).
    schema_only: the schema's problems of doc as it is, nothing else.
    bundle: the bundle directory (root.path must exist in it; relative hook paths)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if schema_only:
        return _schema_problems(doc, kind), []
    notes = _runc_compat(doc, kind, bundle) if compat else []
    return _schema_problems(doc, kind) + _semantic_problems(doc, kind, bundle, strict), notes


def check(doc, kind="config", *, source, bundle=None, strict=False):
    """doc, or a one-line ConfigError ``"<source>: <first problem> (and N more ...)"``:
    problems() with runc's reading (debug-logged), or with strict=True without it and
    with the strict checks. A document valid as it is is not changed (nor is compat.py
    imported)."""
    if not strict and _schema_valid(doc, kind) and not _semantic_problems(doc, kind, bundle, False):
        return doc
    found, notes = problems(doc, kind, bundle=bundle, compat=not strict, strict=strict)
    if notes:
        for note in notes:
            log.debug(f"runc compatibility: {note}")
    if found:
        n = len(found) - 1
        # Only config.json can be given to `pyrunc validate`.
        more = "" if not n else f" (and {n} more problems: run 'pyrunc validate')" if kind == "config" \
            else f" (and {n} more)"
        raise ConfigError(f"{source}: {found[0]}{more}")
    return doc


def load_bundle_config(bundle, *, strict=False):
    """<bundle>/config.json, read (config/load.py) and check()ed."""
    config = load_config(bundle)
    return check(config, "config", source=config_path(bundle), bundle=bundle, strict=strict)
