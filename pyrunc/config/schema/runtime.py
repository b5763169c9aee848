"""What the validators that pyrunc.config.schema.compiler generates call at run time: JSON
equality as jsonschema defines it, and predicates for the schemas' patterns.

Kept small and free of `re` (with `enum`, ~7 ms): it is imported on the create path.
"""


class SchemaError(Exception):
    """The schema itself is unusable (bad $ref, unsupported keyword, bad JSON)."""


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


def equal(a, b):
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and equal(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return _unbool(a) == _unbool(b)


def _key(x):
    """A hashable key, equal for values equal() calls equal (1 and 1.0; not True)."""
    if isinstance(x, str):
        return ("s", x)
    if isinstance(x, bool) or x is None:
        return ("c", x)
    if isinstance(x, list):
        return ("l", tuple(_key(v) for v in x))
    if isinstance(x, dict):
        return ("d", frozenset((k, _key(v)) for k, v in x.items()))
    return ("n", x)  # numbers: 1 == 1.0 and hash(1) == hash(1.0)


def unique(items):
    """uniqueItems in O(n) (a pairwise equal() would be quadratic in the array)."""
    seen = set()
    for x in items:
        k = _key(x)
        if k in seen:
            return False
        seen.add(k)
    return True


# Predicates equal to re.search(pattern, s) for the patterns our specs/ use, so that
# the create path never imports re. `$` also matches before a final "\n", as in re.
# Any other pattern falls back to re. Proved by tests/unit/test_fast_patterns.py.
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


def search(pattern):
    """A predicate s -> bool equal to bool(re.search(pattern, s)); re only if needed."""
    fast = FAST_PATTERNS.get(pattern)
    if fast is not None:
        return lambda s: bool(fast(s))
    compiled = []

    def slow(s):
        if not compiled:
            import re

            compiled.append(re.compile(pattern))
        return compiled[0].search(s) is not None
    return slow
