"""A small, fast JSON Schema draft-04 validator that only answers valid / invalid.

``jsonschema`` costs ~120 ms to import, too much for ``pyrunc create``.  This module
compiles schemas into Python source: one function per schema node, straight-line
checks. The project's ``specs/`` are compiled once, ahead of time, into
``pyrunc/spec/_schema_checks.py`` (regenerate with ``python -m pyrunc.spec.fastschema``;
tests/test_fastschema.py checks that it is current), so ``create`` neither reads nor
compiles a schema. Other schema directories are compiled when first used. When the
answer is "invalid", callers ask ``pyrunc.spec.validate.schema_problems``
(jsonschema) for the messages.

Semantics follow jsonschema's Draft4Validator exactly for the keywords handled:
``$ref`` (siblings ignored, relative file references resolved in the schema
directory; an unresolvable one fails when reached), type (draft-04: 1.0 is not an
integer, booleans are not numbers), properties, patternProperties,
additionalProperties, required, minProperties/maxProperties, items (schema or list),
additionalItems, minItems/maxItems, uniqueItems, enum, pattern (``re.search``),
minLength/maxLength, minimum/maximum with boolean exclusiveMinimum/Maximum,
allOf/anyOf/oneOf/not.  Any other validation keyword is refused (``SchemaError``),
so an unsupported keyword can never be silently ignored.
"""

import os

from pyrunc.jsonutil import loads
from pyrunc.spec.schema_runtime import FAST_PATTERNS, SchemaError  # noqa: F401 (re-exported)

__all__ = ["SchemaError", "Validator", "is_valid", "validator", "generate_module"]

SCHEMA_FILES = {
    "config": "config-schema.json",
    "state": "state-schema.json",
    "features": "features-schema.json",
    # exec --process: the same checks as config.json's process (one function, shared)
    "process": "config-schema.json#/definitions/process",
    # update --resources: config.json's linux.resources
    "resources": "config-linux.json#/definitions/resources",
}

# Keywords that carry no validation meaning in draft-04.
_ANNOTATIONS = frozenset({"$schema", "id", "description", "title", "default", "definitions", "$comment", "examples"})
# Keywords handled by the part of the compiler that sees their sibling.
_COMPANIONS = frozenset({"exclusiveMinimum", "exclusiveMaximum", "additionalItems"})

_TYPE_TESTS = {
    "object": "isinstance(x, dict)",
    "array": "isinstance(x, list)",
    "string": "isinstance(x, str)",
    "integer": "(isinstance(x, int) and not isinstance(x, bool))",
    "number": "(isinstance(x, (int, float)) and not isinstance(x, bool))",
    "boolean": "isinstance(x, bool)",
    "null": "x is None",
}


def _guarded(schema, type_name, test, lines):
    """lines (indented for inside `if test:`) applying to one JSON type; the `if` is
    left out when the schema's own type check already returned for other types."""
    text = "\n".join("        " + ln for ln in lines)
    if schema.get("type") == type_name:
        return "\n".join(line[4:] for line in text.split("\n"))
    return f"    if {test}:\n{text}"


def _unescape_pointer_token(token):
    return token.replace("~1", "/").replace("~0", "~")


class _Schemas:
    """The schema documents of one directory, and $ref resolution."""

    def __init__(self, schema_dir):
        self.dir = os.fspath(schema_dir)
        self.docs = {}

    def doc(self, name):
        doc = self.docs.get(name)
        if doc is None:
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    doc = loads(f.read())
            except (OSError, ValueError) as e:
                raise SchemaError(f"cannot load schema {path}: {e}") from None
            self.docs[name] = doc
        return doc

    @staticmethod
    def resolve(base_file, ref):
        """(file name, JSON pointer) that ``ref`` means inside ``base_file``."""
        file_part, _, fragment = ref.partition("#")
        if file_part:
            if "://" in file_part:
                raise SchemaError(f"remote $ref not supported: {ref}")
            name = os.path.normpath(os.path.join(os.path.dirname(base_file), file_part))
        else:
            name = base_file
        if fragment and not fragment.startswith("/"):
            raise SchemaError(f"unsupported $ref fragment (not a JSON pointer): {ref} in {base_file}")
        return name, fragment

    def node(self, name, pointer):
        node = self.doc(name)
        if pointer:
            for token in pointer[1:].split("/"):
                token = _unescape_pointer_token(token)
                try:
                    if isinstance(node, list):
                        node = node[int(token)]
                    else:
                        node = node[token]
                except (KeyError, IndexError, ValueError, TypeError):
                    raise SchemaError(f"unresolvable $ref {name}#{pointer}") from None
        return node


class _Generator:
    """Python source for the schemas reachable from some roots: a function per node."""

    def __init__(self, schemas):
        self.schemas = schemas
        self.functions = []  # finished function sources
        self.constants = []  # module-level constant definitions
        self.by_ref = {}  # (file, pointer) -> function name
        self.patterns = {}  # pattern -> predicate name
        self.bodies = {}  # function body -> the function defined with it
        self.aliases = []  # "name = other": same body
        self.tables = []  # property tables: (key, function) pairs
        self.count = 0

    def _name(self, prefix):
        self.count += 1
        return f"_{prefix}{self.count}"

    def _constant(self, prefix, value_source):
        name = self._name(prefix)
        self.constants.append(f"{name} = {value_source}")
        return name

    def _pattern(self, pattern):
        name = self.patterns.get(pattern)
        if name is None:
            if pattern not in FAST_PATTERNS:
                import re

                try:
                    re.compile(pattern)
                except re.error as e:
                    raise SchemaError(f"bad pattern {pattern!r}: {e}") from None
            name = self.patterns[pattern] = self._constant("p", f"_search({pattern!r})")
        return name

    def at(self, file, pointer):
        """The function checking the schema at file#pointer."""
        key = (file, pointer)
        name = self.by_ref.get(key)
        if name is None:
            name = self.by_ref[key] = self._name("v")  # first: recursive schemas end
            try:
                schema = self.schemas.node(file, pointer)
            except SchemaError as e:
                return self._failing(name, e)
            self._emit(name, schema, file)
        return name

    def _failing(self, name, error):
        """As jsonschema: a reference that cannot be resolved fails only when reached."""
        self.constants.append(f"_E_{name} = {str(error)!r}")
        self.functions.append(f"def {name}(x):\n    raise _SchemaError(_E_{name})\n")
        return name

    def sub(self, schema, file):
        if isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]  # its siblings are ignored (draft-04)
            try:
                if not isinstance(ref, str):
                    raise SchemaError(f"bad $ref in {file}: {ref!r}")
                target = self.schemas.resolve(file, ref)
            except SchemaError as e:
                return self._failing(self._name("v"), e)
            return self.at(*target)
        name = self._name("v")
        self._emit(name, schema, file)
        return name

    def _emit(self, name, schema, file):
        if not isinstance(schema, dict):
            raise SchemaError(f"schema in {file} is not an object: {schema!r}")
        if "$ref" in schema:
            self.functions.append(f"def {name}(x):\n    return {self.sub(schema, file)}(x)\n")
            return
        handled = set(_ANNOTATIONS) | _COMPANIONS
        body = []

        def kw(key):
            handled.add(key)
            return schema[key]

        def fail_if(cond, indent=1):
            body.append("    " * indent + f"if {cond}:\n" + "    " * (indent + 1) + "return False")

        if "type" in schema:
            t = kw("type")
            names = t if isinstance(t, list) else [t]
            try:
                tests = [_TYPE_TESTS[n] for n in names]
            except (KeyError, TypeError):
                raise SchemaError(f"unknown type {t!r} in {file}") from None
            fail_if(f"not ({' or '.join(tests)})" if tests else "True")

        if "enum" in schema:
            values = kw("enum")
            if values and all(isinstance(v, str) for v in values):
                c = self._constant("e", f"frozenset({sorted(set(values))!r})")
                fail_if(f"not (isinstance(x, str) and x in {c})")
            else:
                c = self._constant("e", repr(list(values)))
                fail_if(f"not any(_equal(x, v) for v in {c})")

        obj_keys = ("properties", "patternProperties", "additionalProperties", "required",
                    "minProperties", "maxProperties", "dependencies")
        if any(k in schema for k in obj_keys):
            if "dependencies" in schema:
                raise SchemaError(f"keyword 'dependencies' not supported (in {file})")
            props = {k: self.sub(s, file) for k, s in kw("properties").items()} \
                if "properties" in schema else {}
            patterns = [(self._pattern(p), self.sub(s, file))
                        for p, s in kw("patternProperties").items()] \
                if "patternProperties" in schema else []
            additional = kw("additionalProperties") if "additionalProperties" in schema else True
            if isinstance(additional, dict):
                additional = self.sub(additional, file)
            elif additional is not True and additional is not False:
                raise SchemaError(f"bad additionalProperties in {file}")
            lines = []
            required = list(kw("required")) if "required" in schema else []
            if len(required) == 1:
                lines.append(f"if {required[0]!r} not in x:\n            return False")
            elif required:
                c = self._constant("r", repr(tuple(required)))
                lines.append(f"for r in {c}:\n            if r not in x:\n                return False")
            if "minProperties" in schema:
                lines.append(f"if len(x) < {kw('minProperties')!r}:\n            return False")
            if "maxProperties" in schema:
                lines.append(f"if len(x) > {kw('maxProperties')!r}:\n            return False")
            if len(props) == 1:
                (key, fn), = props.items()
                lines.append(f"if {key!r} in x and not {fn}(x[{key!r}]):\n            return False")
            elif props:
                # A table (defined after the functions it names) rather than a check each.
                table = self._name("t")
                self.tables.append(f"{table} = ({''.join(f'({k!r}, {fn}), ' for k, fn in props.items())})")
                lines.append(f"for k, f in {table}:\n            if k in x and not f(x[k]):\n"
                             f"                return False")
            if patterns:
                checks = "\n".join(f"            if {p}(k) and not {fn}(v):\n                return False"
                                   for p, fn in patterns)
                lines.append(f"for k, v in x.items():\n{checks}")
            if additional is not True:
                known = self._constant("k", f"frozenset({sorted(props)!r})")
                matched = "".join(f" or {p}(k)" for p, _ in patterns)
                verdict = "return False" if additional is False \
                    else f"if not {additional}(v):\n                return False"
                lines.append(f"for k, v in x.items():\n            if k in {known}{matched}:\n"
                             f"                continue\n            {verdict}")
            if lines:
                body.append(_guarded(schema, "object", "isinstance(x, dict)", lines))

        arr_keys = ("items", "minItems", "maxItems", "uniqueItems")
        if any(k in schema for k in arr_keys):
            lines = []
            if "minItems" in schema:
                lines.append(f"if len(x) < {kw('minItems')!r}:\n            return False")
            if "maxItems" in schema:
                lines.append(f"if len(x) > {kw('maxItems')!r}:\n            return False")
            items = kw("items") if "items" in schema else None
            if isinstance(items, dict):
                lines.append(f"for v in x:\n            if not {self.sub(items, file)}(v):\n"
                             f"                return False")
            elif isinstance(items, list):
                fns = [self.sub(s, file) for s in items]
                if fns:
                    lines.append(f"for f, v in zip(({', '.join(fns)},), x):\n"
                                 f"            if not f(v):\n                return False")
                extra = schema.get("additionalItems", True)
                if extra is False:
                    lines.append(f"if len(x) > {len(fns)}:\n            return False")
                elif isinstance(extra, dict):
                    lines.append(f"for v in x[{len(fns)}:]:\n            if not {self.sub(extra, file)}(v):\n"
                                 f"                return False")
            elif items is not None:
                raise SchemaError(f"bad items in {file}")
            if "uniqueItems" in schema and kw("uniqueItems"):
                lines.append("if not _unique(x):\n            return False")
            if lines:
                body.append(_guarded(schema, "array", "isinstance(x, list)", lines))

        if "pattern" in schema:
            fail_if(f"isinstance(x, str) and not {self._pattern(kw('pattern'))}(x)")
        if "minLength" in schema:
            fail_if(f"isinstance(x, str) and len(x) < {kw('minLength')!r}")
        if "maxLength" in schema:
            fail_if(f"isinstance(x, str) and len(x) > {kw('maxLength')!r}")

        is_num = _TYPE_TESTS["number"]
        if "minimum" in schema:
            op = "<=" if schema.get("exclusiveMinimum", False) else "<"
            fail_if(f"{is_num} and x {op} {kw('minimum')!r}")
        if "maximum" in schema:
            op = ">=" if schema.get("exclusiveMaximum", False) else ">"
            fail_if(f"{is_num} and x {op} {kw('maximum')!r}")

        if "allOf" in schema:
            for s in kw("allOf"):
                fail_if(f"not {self.sub(s, file)}(x)")
        if "anyOf" in schema:
            fns = [self.sub(s, file) for s in kw("anyOf")]
            fail_if(f"not ({' or '.join(f'{fn}(x)' for fn in fns) or 'False'})")
        if "oneOf" in schema:
            fns = [self.sub(s, file) for s in kw("oneOf")]
            fail_if(f"sum(({''.join(f'{fn}(x), ' for fn in fns)})) != 1")
        if "not" in schema:
            fail_if(f"{self.sub(kw('not'), file)}(x)")

        unknown = set(schema) - handled
        if unknown:
            raise SchemaError(f"unsupported keyword(s) {sorted(unknown)} in {file}")
        self._define(name, "".join(b + "\n" for b in body))

    def _define(self, name, body):
        """def name(x) with that body; a body already defined makes name an alias."""
        same = self.bodies.get(body)
        if same is not None:
            self.aliases.append(f"{name} = {same}")
        else:
            self.bodies[body] = name
            self.functions.append(f"def {name}(x):\n{body}    return True\n")

    def module(self, roots, doc):
        """Module source defining CHECKS = {key: root function} for roots {key: file}
        (or file#pointer)."""
        entries = {key: self.at(*root.partition("#")[::2]) for key, root in roots.items()}
        return "\n".join([
            f'"""{doc}"""',
            "from pyrunc.spec.schema_runtime import SchemaError as _SchemaError  # noqa: F401",
            "from pyrunc.spec.schema_runtime import equal as _equal  # noqa: F401",
            "from pyrunc.spec.schema_runtime import search as _search  # noqa: F401",
            "from pyrunc.spec.schema_runtime import unique as _unique  # noqa: F401",
            "",
            *self.constants,
            "",
            "",
            "\n\n".join(self.functions),
            "",
            *self.aliases,
            "",
            *self.tables,
            "",
            "CHECKS = {" + ", ".join(f"{k!r}: {v}" for k, v in entries.items()) + "}",
            "",
        ])


def generate_module(schema_dir, roots=None):
    """Source of a module whose CHECKS maps each of roots' keys (default: config, state,
    features, process) to a function doc -> bool for the schema in that file of
    schema_dir (or at that file#pointer)."""
    roots = dict(roots or SCHEMA_FILES)
    return _Generator(_Schemas(schema_dir)).module(
        roots, "Generated by pyrunc.spec.fastschema from specs/*.json: do not edit.\n\n"
               "python -m pyrunc.spec.fastschema > pyrunc/spec/_schema_checks.py\n")


class Validator:
    """Validator for one root schema file in a schema directory (compiled on first use)."""

    def __init__(self, schema_dir, root_file):
        self._dir = os.fspath(schema_dir)
        self._root_file = root_file
        self._check = None

    def is_valid(self, instance) -> bool:
        if self._check is None:
            source = generate_module(self._dir, {"root": self._root_file})
            namespace = {}
            exec(compile(source, f"<schema {self._dir}/{self._root_file}>", "exec"), namespace)
            self._check = namespace["CHECKS"]["root"]
        return self._check(instance)

    def compile_all(self):
        """Compile every schema reachable from the root; returns how many ($ref targets
        and inline schemas) became functions (for tests)."""
        gen = _Generator(_Schemas(self._dir))
        gen.module({"root": self._root_file}, "")
        return len(gen.functions)


_validators = {}


def validator(schema="config", schema_dir=None) -> Validator:
    """The cached Validator for "config", "state", "features" or "process" in schema_dir."""
    key = (schema, schema_dir)
    v = _validators.get(key)
    if v is None:
        try:
            root_file = SCHEMA_FILES[schema]
        except KeyError:
            raise ValueError(f"unknown schema {schema!r}; expected one of {sorted(SCHEMA_FILES)}") from None
        if schema_dir is None:
            from pyrunc.spec import specs_dir
            schema_dir = specs_dir()
        v = _validators[key] = Validator(schema_dir, root_file)
    return v


def is_valid(instance, schema="config") -> bool:
    """True when ``instance`` is valid under the project's ``schema`` schema (the
    ahead-of-time compiled checks)."""
    from pyrunc.spec._schema_checks import CHECKS

    try:
        check = CHECKS[schema]
    except KeyError:
        raise ValueError(f"unknown schema {schema!r}; expected one of {sorted(SCHEMA_FILES)}") from None
    return check(instance)


if __name__ == "__main__":
    import sys

    from pyrunc.spec import specs_dir

    sys.stdout.write(generate_module(sys.argv[1] if len(sys.argv) > 1 else specs_dir()))
