"""A small, fast JSON Schema draft-04 validator that only answers valid / invalid.

``jsonschema`` costs ~120 ms to import, too much for ``pyrunc create``.  This module
compiles schemas into Python source: one function per schema node, straight-line
checks, each named after the node's file and JSON pointer (so that one new property
in specs/ is a small diff). The project's ``specs/`` are compiled once, ahead of time,
into ``pyrunc/config/schema/_checks.py`` (regenerate with ``python -m
pyrunc.config.schema.compiler > pyrunc/config/schema/_checks.py``; ``python -m
pyrunc.config.schema.compiler --check`` exits 1 when it is not current, and a test runs it), so ``create`` neither reads nor compiles a
schema. Other schema directories are compiled when first used. When the
answer is "invalid", callers ask ``pyrunc.config.schema.messages.schema_problems``
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

(Over 400 lines: one compiler, keyword by keyword; splitting it would only scatter it.)
"""

import os
import sys

from pyrunc.util.jsonutil import loads
from pyrunc.config.schema.runtime import FAST_PATTERNS, SchemaError  # noqa: F401 (re-exported)
from pyrunc.config import specs_dir

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

CHECKS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_checks.py")
_REGENERATE = "python -m pyrunc.config.schema.compiler > pyrunc/config/schema/_checks.py"

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


# Generated names are derived from where the schema node is (its file and JSON pointer),
# never from the order the generator meets it: adding one property to specs/ changes a
# few lines of _checks.py, not the name of every function after it.

def _ident(text):
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text)


def _digest(text):
    import hashlib

    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _file_tag(file):
    """config-schema.json -> config, config-linux.json -> linux, defs-linux.json -> defs_linux."""
    stem = file[:-5] if file.endswith(".json") else file
    stem = stem.removesuffix("-schema")
    if stem.startswith("config-"):
        stem = stem[len("config-"):]
    return _ident(stem)


def _node_name(file, pointer):
    """_check__linux__resources__memory for config-linux.json#/definitions/resources/
    properties/memory: the "properties" and "definitions" keywords are left out."""
    parts = [_file_tag(file)]
    tokens = [_unescape_pointer_token(t) for t in pointer[1:].split("/")] if pointer else []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in ("properties", "definitions") and i + 1 < len(tokens):
            parts.append(_ident(tokens[i + 1]))
            i += 2
        elif t == "patternProperties" and i + 1 < len(tokens):
            parts.append("pattern_" + _ident(tokens[i + 1]))
            i += 2
        else:
            parts.append(_ident(t))
            i += 1
    return "_check__" + "__".join(parts)


def _pointer_token(token):
    return str(token).replace("~", "~0").replace("/", "~1")


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
        self.functions = {}  # name -> source of a function used by one node
        self.constants = {}  # name -> module-level constant definition
        self.by_ref = {}  # (file, pointer) -> function name
        self.owners = {}  # generated name -> the (file, pointer) or pattern it stands for
        self.patterns = {}  # pattern -> predicate name
        self.bodies = {}  # function body -> names of the nodes checked by it
        self.tables = {}  # name -> property table: (key, function) pairs

    def _unique(self, name, owner):
        """name, or (when another node's name came out the same) name + a digest of owner."""
        known = self.owners.setdefault(name, owner)
        if known != owner:
            name = f"{name}_{_digest(repr(owner))}"
            self.owners[name] = owner
        return name

    def _constant(self, node, kind, value_source):
        name = f"_{kind}{node[len('_check'):]}"
        self.constants[name] = f"{name} = {value_source}"
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
            tag = _ident(pattern).strip("_") or _digest(pattern)
            name = self.patterns[pattern] = self._unique(f"_pattern__{tag}", ("pattern", pattern))
            self.constants[name] = f"{name} = _search({pattern!r})"
        return name

    def at(self, file, pointer):
        """The function checking the schema at file#pointer."""
        key = (file, pointer)
        name = self.by_ref.get(key)
        if name is None:
            # named first: recursive schemas end
            name = self.by_ref[key] = self._unique(_node_name(file, pointer), key)
            try:
                schema = self.schemas.node(file, pointer)
            except SchemaError as e:
                return self._failing(name, e)
            self._emit(name, schema, file, pointer)
        return name

    def _failing(self, name, error):
        """As jsonschema: a reference that cannot be resolved fails only when reached."""
        self.constants[f"_E{name}"] = f"_E{name} = {str(error)!r}"
        self.functions[name] = f"def {name}(x):\n    raise _SchemaError(_E{name})\n"
        return name

    def sub(self, schema, file, pointer):
        """The function checking ``schema``, found at file#pointer."""
        if isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]  # its siblings are ignored (draft-04)
            try:
                if not isinstance(ref, str):
                    raise SchemaError(f"bad $ref in {file}: {ref!r}")
                target = self.schemas.resolve(file, ref)
            except SchemaError as e:
                key = (file, pointer)
                return self._failing(self._unique(_node_name(file, pointer), key), e)
            return self.at(*target)
        return self.at_inline(schema, file, pointer)

    def at_inline(self, schema, file, pointer):
        key = (file, pointer)
        name = self.by_ref.get(key)
        if name is None:
            name = self.by_ref[key] = self._unique(_node_name(file, pointer), key)
            self._emit(name, schema, file, pointer)
        return name

    def _emit(self, name, schema, file, pointer):
        if not isinstance(schema, dict):
            raise SchemaError(f"schema in {file} is not an object: {schema!r}")
        if "$ref" in schema:
            self._define(name, f"    return {self.sub(schema, file, pointer)}(x)\n", returns=False)
            return

        def sub(sub_schema, *tokens):
            return self.sub(sub_schema, file, pointer + "".join("/" + _pointer_token(t) for t in tokens))
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
                c = self._constant(name, "enum", f"frozenset({sorted(set(values))!r})")
                fail_if(f"not (isinstance(x, str) and x in {c})")
            else:
                c = self._constant(name, "enum", repr(list(values)))
                fail_if(f"not any(_equal(x, v) for v in {c})")

        obj_keys = ("properties", "patternProperties", "additionalProperties", "required",
                    "minProperties", "maxProperties", "dependencies")
        if any(k in schema for k in obj_keys):
            if "dependencies" in schema:
                raise SchemaError(f"keyword 'dependencies' not supported (in {file})")
            props = {k: sub(s, "properties", k) for k, s in kw("properties").items()} \
                if "properties" in schema else {}
            patterns = [(self._pattern(p), sub(s, "patternProperties", p))
                        for p, s in kw("patternProperties").items()] \
                if "patternProperties" in schema else []
            additional = kw("additionalProperties") if "additionalProperties" in schema else True
            if isinstance(additional, dict):
                additional = sub(additional, "additionalProperties")
            elif additional is not True and additional is not False:
                raise SchemaError(f"bad additionalProperties in {file}")
            lines = []
            required = list(kw("required")) if "required" in schema else []
            if len(required) == 1:
                lines.append(f"if {required[0]!r} not in x:\n            return False")
            elif required:
                c = self._constant(name, "required", repr(tuple(required)))
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
                table = f"_properties{name[len('_check'):]}"
                self.tables[table] = f"{table} = ({''.join(f'({k!r}, {fn}), ' for k, fn in props.items())})"
                lines.append(f"for k, f in {table}:\n            if k in x and not f(x[k]):\n"
                             f"                return False")
            if patterns:
                checks = "\n".join(f"            if {p}(k) and not {fn}(v):\n                return False"
                                   for p, fn in patterns)
                lines.append(f"for k, v in x.items():\n{checks}")
            if additional is not True:
                known = self._constant(name, "known", f"frozenset({sorted(props)!r})")
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
                lines.append(f"for v in x:\n            if not {sub(items, 'items')}(v):\n"
                             f"                return False")
            elif isinstance(items, list):
                fns = [sub(s, "items", i) for i, s in enumerate(items)]
                if fns:
                    lines.append(f"for f, v in zip(({', '.join(fns)},), x):\n"
                                 f"            if not f(v):\n                return False")
                extra = schema.get("additionalItems", True)
                if extra is False:
                    lines.append(f"if len(x) > {len(fns)}:\n            return False")
                elif isinstance(extra, dict):
                    lines.append(f"for v in x[{len(fns)}:]:\n            if not {sub(extra, 'additionalItems')}(v):\n"
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
            for i, s in enumerate(kw("allOf")):
                fail_if(f"not {sub(s, 'allOf', i)}(x)")
        if "anyOf" in schema:
            fns = [sub(s, "anyOf", i) for i, s in enumerate(kw("anyOf"))]
            fail_if(f"not ({' or '.join(f'{fn}(x)' for fn in fns) or 'False'})")
        if "oneOf" in schema:
            fns = [sub(s, "oneOf", i) for i, s in enumerate(kw("oneOf"))]
            fail_if(f"sum(({''.join(f'{fn}(x), ' for fn in fns)})) != 1")
        if "not" in schema:
            fail_if(f"{sub(kw('not'), 'not')}(x)")

        unknown = set(schema) - handled
        if unknown:
            raise SchemaError(f"unsupported keyword(s) {sorted(unknown)} in {file}")
        self._define(name, "".join(b + "\n" for b in body))

    def _define(self, name, body, returns=True):
        """def name(x) with that body (and return True after it)."""
        if returns:
            body += "    return True\n"
        self.bodies.setdefault(body, []).append(name)

    def _function_sources(self):
        """Sources of the functions, and the aliases: a body shared by several nodes is
        one function named after the body (so that which node came first does not
        matter), and each node's name is an alias of it."""
        functions = dict(self.functions)
        aliases = []
        for body, names in self.bodies.items():
            if len(names) == 1:
                functions[names[0]] = f"def {names[0]}(x):\n{body}"
                continue
            shared = self._unique(f"_same_{_digest(body)}", ("body", body))
            functions[shared] = f"def {shared}(x):\n{body}"
            aliases.extend(f"{n} = {shared}" for n in names)
        return [functions[n] for n in sorted(functions)], sorted(aliases)

    def module(self, roots, doc):
        """Module source defining CHECKS = {key: root function} for roots {key: file}
        (or file#pointer). Every part is sorted by name: the order the nodes were met
        in does not show."""
        entries = {key: self.at(*root.partition("#")[::2]) for key, root in roots.items()}
        functions, aliases = self._function_sources()
        return "\n".join([
            f'"""{doc}"""',
            "from pyrunc.config.schema.runtime import SchemaError as _SchemaError  # noqa: F401",
            "from pyrunc.config.schema.runtime import equal as _equal  # noqa: F401",
            "from pyrunc.config.schema.runtime import search as _search  # noqa: F401",
            "from pyrunc.config.schema.runtime import unique as _unique  # noqa: F401",
            "",
            *(self.constants[n] for n in sorted(self.constants)),
            "",
            "",
            "\n\n".join(functions),
            "",
            *aliases,
            "",
            *(self.tables[n] for n in sorted(self.tables)),
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
        roots, "Generated by pyrunc.config.schema.compiler from specs/*.json: do not edit.\n\n"
               f"{_REGENERATE}\n"
               "python -m pyrunc.config.schema.compiler --check    (exits 1 when this file is not current)\n"
               "(Over 400 lines: generated, one function per schema node of the schemas.)\n")


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
        return len(gen.by_ref)


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
            schema_dir = specs_dir()
        v = _validators[key] = Validator(schema_dir, root_file)
    return v


def is_valid(instance, schema="config") -> bool:
    """True when ``instance`` is valid under the project's ``schema`` schema (the
    ahead-of-time compiled checks)."""
    from pyrunc.config.schema._checks import CHECKS

    try:
        check = CHECKS[schema]
    except KeyError:
        raise ValueError(f"unknown schema {schema!r}; expected one of {sorted(SCHEMA_FILES)}") from None
    return check(instance)


def main(argv):
    """python -m pyrunc.config.schema.compiler [--check] [SCHEMA_DIR]: write the module for
    SCHEMA_DIR (default: the project's specs/) to standard output, or with --check exit 1,
    saying so in one line, when pyrunc/config/schema/_checks.py is not that module."""
    check = "--check" in argv
    rest = [a for a in argv if a != "--check"]
    if len(rest) > 1 or any(a.startswith("-") for a in rest):
        sys.stderr.write("usage: python -m pyrunc.config.schema.compiler [--check] [SCHEMA_DIR]\n")
        return 2
    schema_dir = rest[0] if rest else specs_dir()
    try:
        source = generate_module(schema_dir)
    except SchemaError as e:
        sys.stderr.write(f"config.schema.compiler: {e}\n")
        return 1
    if not check:
        sys.stdout.write(source)
        return 0
    try:
        with open(CHECKS_FILE, encoding="utf-8") as f:
            current = f.read()
    except OSError as e:
        current = None
        why = e.strerror or str(e)
    else:
        why = "differs from what the generator writes"
    if current != source:
        sys.stderr.write(f"config.schema.compiler: {CHECKS_FILE} is not current ({why} for {schema_dir}): "
                         f"run {_REGENERATE}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
