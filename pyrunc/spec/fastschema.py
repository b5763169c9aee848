"""A small, fast JSON Schema draft-04 validator that only answers valid / invalid.

``jsonschema`` costs ~120 ms to import, too much for ``pyrunc create``.  This
module compiles the project's ``specs/`` schemas into nested closures on first
use (only the parts actually reached) and answers with a bool.  When the answer
is "invalid", callers ask ``pyrunc.spec.validate.schema_problems`` (jsonschema)
for the messages.

Semantics follow jsonschema's Draft4Validator exactly for the keywords handled:
``$ref`` (siblings ignored, relative file references resolved in the schema
directory), type (draft-04: 1.0 is not an integer, booleans are not numbers),
properties, patternProperties, additionalProperties, required,
minProperties/maxProperties, items (schema or list), additionalItems,
minItems/maxItems, uniqueItems, enum, pattern (``re.search``),
minLength/maxLength, minimum/maximum with boolean exclusiveMinimum/Maximum,
allOf/anyOf/oneOf/not.  Any other validation keyword in a schema is refused
when that schema is compiled (``SchemaError``), so an unsupported keyword can
never be silently ignored.
"""

import os

from pyrunc.jsonutil import loads

__all__ = ["SchemaError", "Validator", "is_valid", "validator"]

SCHEMA_FILES = {
    "config": "config-schema.json",
    "state": "state-schema.json",
    "features": "features-schema.json",
}

# Keywords that carry no validation meaning in draft-04.
_ANNOTATIONS = frozenset({"$schema", "id", "description", "title", "default", "definitions", "$comment", "examples"})
# Keywords handled by the part of the compiler that sees their sibling.
_COMPANIONS = frozenset({"exclusiveMinimum", "exclusiveMaximum", "additionalItems"})


class SchemaError(Exception):
    """The schema itself is unusable (bad $ref, unsupported keyword, bad JSON)."""


def _always(_instance):
    return True


def _is_object(x):
    return isinstance(x, dict)


def _is_array(x):
    return isinstance(x, list)


def _is_string(x):
    return isinstance(x, str)


def _is_integer(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_boolean(x):
    return isinstance(x, bool)


def _is_null(x):
    return x is None


_TYPES = {
    "object": _is_object,
    "array": _is_array,
    "string": _is_string,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": _is_boolean,
    "null": _is_null,
}


# Equality as jsonschema defines it for enum/uniqueItems: booleans are never
# equal to numbers, 1 == 1.0, containers compare element-wise.
_TRUE = object()
_FALSE = object()


def _unbool(x):
    if x is True:
        return _TRUE
    if x is False:
        return _FALSE
    return x


def _equal(a, b):
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and _equal(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return _unbool(a) == _unbool(b)


def _unescape_pointer_token(token):
    return token.replace("~1", "/").replace("~0", "~")



# Predicates equal to re.search(pattern, s) for the patterns our specs/ use, so that
# the create path never imports re (~7 ms with enum). `$` also matches before a final
# "\n", as in re. Any other pattern falls back to re. Proved by tests/test_fast_patterns.py.
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_UPPER_ = _UPPER | {"_"}
_DIGITS = frozenset("0123456789")
_CPULIST = _DIGITS | frozenset("-, ")


def _chomp(s):
    return s[:-1] if s.endswith("\n") else s


def _prefixed_class(prefix, chars):
    n = len(prefix)

    def match(s):
        t = _chomp(s)
        return len(t) > n and t.startswith(prefix) and chars.issuperset(t[n:])
    return match


def _hugepage(s):
    t = _chomp(s)
    return (len(t) >= 3 and t[0] in "123456789" and t[-1] == "B" and t[-2] in "GKM"
            and _DIGITS.issuperset(t[1:-2]))


FAST_PATTERNS = {
    ".": lambda s: any(c != "\n" for c in s),
    "^CAP_[A-Z_]+$": _prefixed_class("CAP_", _UPPER_),
    "^RLIMIT_[A-Z]+$": _prefixed_class("RLIMIT_", _UPPER),
    "^MB:[^\\n]*$": lambda s: s.startswith("MB:") and "\n" not in _chomp(s[3:]),
    "^[-0-9, ]*$": lambda s: _CPULIST.issuperset(_chomp(s)),
    "^[1-9][0-9]*[GKM]B$": _hugepage,
    "^[bcpu]$": lambda s: _chomp(s) in ("b", "c", "p", "u") and len(s) - len(_chomp(s)) <= 1,
}


class _Search:
    __slots__ = ("search",)

    def __init__(self, search):
        self.search = search


def _compile(pattern):
    """An object with .search(s) -> truthy/None, like re.compile(pattern)."""
    fast = FAST_PATTERNS.get(pattern)
    if fast is not None:
        return _Search(lambda s: True if fast(s) else None)
    import re

    return re.compile(pattern)


class Validator:
    """Validator for one root schema file in a schema directory."""

    def __init__(self, schema_dir, root_file):
        self._dir = os.fspath(schema_dir)
        self._root_file = root_file
        self._docs = {}
        self._compiled = {}
        self._root = None

    # -- loading and references ---------------------------------------------

    def _doc(self, name):
        doc = self._docs.get(name)
        if doc is None:
            path = os.path.join(self._dir, name)
            try:
                with open(path, "rb") as f:
                    doc = loads(f.read())
            except (OSError, ValueError) as e:
                raise SchemaError(f"cannot load schema {path}: {e}") from None
            self._docs[name] = doc
        return doc

    def _resolve(self, base_file, ref):
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

    def _node(self, name, pointer):
        node = self._doc(name)
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

    def _compiled_at(self, name, pointer):
        key = (name, pointer)
        fn = self._compiled.get(key)
        if fn is None:
            holder = []
            # Placeholder so that recursive schemas terminate while compiling.
            self._compiled[key] = lambda x: holder[0](x)
            fn = self._compile(self._node(name, pointer), name)
            holder.append(fn)
            self._compiled[key] = fn
        return fn

    def _ref(self, base_file, ref):
        name, pointer = self._resolve(base_file, ref)
        target = []

        def check_ref(x):
            # Resolved on first use, like jsonschema does.
            if not target:
                target.append(self._compiled_at(name, pointer))
            return target[0](x)

        return check_ref

    # -- compilation ----------------------------------------------------------

    def _compile(self, schema, file):
        if not isinstance(schema, dict):
            raise SchemaError(f"schema in {file} is not an object: {schema!r}")
        if "$ref" in schema:
            return self._ref(file, schema["$ref"])  # draft-04: siblings of $ref are ignored

        checks = []
        handled = set(_ANNOTATIONS) | _COMPANIONS
        sub = self._compile

        def kw(name):
            handled.add(name)
            return schema[name]

        if "type" in schema:
            t = kw("type")
            names = t if isinstance(t, list) else [t]
            try:
                preds = tuple(_TYPES[n] for n in names)
            except (KeyError, TypeError):
                raise SchemaError(f"unknown type {t!r} in {file}") from None
            if len(preds) == 1:
                checks.append(preds[0])
            else:
                checks.append(lambda x: any(p(x) for p in preds))

        if "enum" in schema:
            values = kw("enum")
            if values and all(isinstance(v, str) for v in values):
                allowed = frozenset(values)
                checks.append(lambda x: isinstance(x, str) and x in allowed)
            else:
                values = list(values)
                checks.append(lambda x: any(_equal(x, v) for v in values))

        # ---- objects
        obj_keys = ("properties", "patternProperties", "additionalProperties", "required",
                    "minProperties", "maxProperties", "dependencies")
        if any(k in schema for k in obj_keys):
            if "dependencies" in schema:
                raise SchemaError(f"keyword 'dependencies' not supported (in {file})")
            props = {name: sub(s, file) for name, s in kw("properties").items()} if "properties" in schema else {}
            prop_items = tuple(props.items())
            patterns = tuple((_compile(p), sub(s, file)) for p, s in kw("patternProperties").items()) \
                if "patternProperties" in schema else ()
            required = tuple(kw("required")) if "required" in schema else ()
            additional = kw("additionalProperties") if "additionalProperties" in schema else True
            if isinstance(additional, dict):
                additional = sub(additional, file)
            elif additional is not True and additional is not False:
                raise SchemaError(f"bad additionalProperties in {file}")
            min_p = kw("minProperties") if "minProperties" in schema else None
            max_p = kw("maxProperties") if "maxProperties" in schema else None
            pattern_res = tuple(p for p, _ in patterns)

            def check_object(x):
                if not isinstance(x, dict):
                    return True
                for r in required:
                    if r not in x:
                        return False
                if min_p is not None and len(x) < min_p:
                    return False
                if max_p is not None and len(x) > max_p:
                    return False
                for name, fn in prop_items:
                    if name in x and not fn(x[name]):
                        return False
                if patterns:
                    for key, value in x.items():
                        for rx, fn in patterns:
                            if rx.search(key) and not fn(value):
                                return False
                if additional is not True:
                    for key, value in x.items():
                        if key in props or any(rx.search(key) for rx in pattern_res):
                            continue
                        if additional is False or not additional(value):
                            return False
                return True

            checks.append(check_object)

        # ---- arrays
        arr_keys = ("items", "minItems", "maxItems", "uniqueItems")
        if any(k in schema for k in arr_keys):
            items = kw("items") if "items" in schema else None
            item_fn = None
            tuple_fns = None
            extra = True
            if isinstance(items, dict):
                item_fn = sub(items, file)
            elif isinstance(items, list):
                tuple_fns = tuple(sub(s, file) for s in items)
                extra = schema.get("additionalItems", True)
                if isinstance(extra, dict):
                    extra = sub(extra, file)
            elif items is not None:
                raise SchemaError(f"bad items in {file}")
            min_i = kw("minItems") if "minItems" in schema else None
            max_i = kw("maxItems") if "maxItems" in schema else None
            unique = kw("uniqueItems") if "uniqueItems" in schema else False

            def check_array(x):
                if not isinstance(x, list):
                    return True
                n = len(x)
                if min_i is not None and n < min_i:
                    return False
                if max_i is not None and n > max_i:
                    return False
                if item_fn is not None:
                    for v in x:
                        if not item_fn(v):
                            return False
                elif tuple_fns is not None:
                    for fn, v in zip(tuple_fns, x):
                        if not fn(v):
                            return False
                    if n > len(tuple_fns) and extra is not True:
                        if extra is False:
                            return False
                        for v in x[len(tuple_fns):]:
                            if not extra(v):
                                return False
                if unique:
                    for i in range(n):
                        for j in range(i + 1, n):
                            if _equal(x[i], x[j]):
                                return False
                return True

            checks.append(check_array)

        # ---- strings
        if "pattern" in schema:
            rx = _compile(kw("pattern"))
            search = rx.search
            checks.append(lambda x: not isinstance(x, str) or search(x) is not None)
        if "minLength" in schema or "maxLength" in schema:
            min_l = kw("minLength") if "minLength" in schema else None
            max_l = kw("maxLength") if "maxLength" in schema else None

            def check_length(x):
                if not isinstance(x, str):
                    return True
                n = len(x)
                return (min_l is None or n >= min_l) and (max_l is None or n <= max_l)

            checks.append(check_length)

        # ---- numbers
        if "minimum" in schema or "maximum" in schema:
            lo = kw("minimum") if "minimum" in schema else None
            hi = kw("maximum") if "maximum" in schema else None
            lo_excl = bool(schema.get("exclusiveMinimum", False))
            hi_excl = bool(schema.get("exclusiveMaximum", False))

            def check_range(x):
                if not _is_number(x):
                    return True
                if lo is not None and (x <= lo if lo_excl else x < lo):
                    return False
                if hi is not None and (x >= hi if hi_excl else x > hi):
                    return False
                return True

            checks.append(check_range)

        # ---- combinators
        if "allOf" in schema:
            fns = tuple(sub(s, file) for s in kw("allOf"))
            checks.append(lambda x: all(fn(x) for fn in fns))
        if "anyOf" in schema:
            fns_any = tuple(sub(s, file) for s in kw("anyOf"))
            checks.append(lambda x: any(fn(x) for fn in fns_any))
        if "oneOf" in schema:
            fns_one = tuple(sub(s, file) for s in kw("oneOf"))
            checks.append(lambda x: sum(1 for fn in fns_one if fn(x)) == 1)
        if "not" in schema:
            fn_not = sub(kw("not"), file)
            checks.append(lambda x: not fn_not(x))

        unknown = set(schema) - handled
        if unknown:
            raise SchemaError(f"unsupported keyword(s) {sorted(unknown)} in {file}")

        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        checks = tuple(checks)

        def check_all(x):
            for c in checks:
                if not c(x):
                    return False
            return True

        return check_all

    # -- public -----------------------------------------------------------------

    def is_valid(self, instance) -> bool:
        if self._root is None:
            self._root = self._compiled_at(self._root_file, "")
        return self._root(instance)

    def compile_all(self):
        """Compile every schema reachable from the root (for tests)."""
        seen = set()
        todo = [(self._root_file, "")]
        while todo:
            name, pointer = todo.pop()
            if (name, pointer) in seen:
                continue
            seen.add((name, pointer))
            self._compiled_at(name, pointer)
            stack = [self._node(name, pointer)]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    if isinstance(node.get("$ref"), str):
                        todo.append(self._resolve(name, node["$ref"]))
                    stack.extend(v for k, v in node.items() if k != "enum")
                elif isinstance(node, list):
                    stack.extend(node)
        return len(seen)


_validators = {}


def validator(schema="config", schema_dir=None) -> Validator:
    """The cached Validator for "config", "state" or "features"."""
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
    """True when ``instance`` is valid under the project's ``schema`` schema."""
    return validator(schema).is_valid(instance)
