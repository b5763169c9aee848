"""Problems as one-line strings ``"<JSON pointer>: <message>"`` (the root is ``/``),
shared by the schema and the semantic checks, and the helpers every area of the
semantic checks uses. Standard library only (exec imports it)."""
from pyrunc.errors import one_line  # noqa: F401 - re-exported


def _escape(token):
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*parts) -> str:
    """RFC 6901 pointer for ``parts``, except that the root is ``/``."""
    if not parts:
        return "/"
    return "/" + "/".join(_escape(p) for p in parts)


def _pointer_key(problem):
    ptr, _, message = problem.partition(": ")
    tokens = [] if ptr == "/" else ptr[1:].split("/")
    return (tuple((0, int(t), "") if t.isascii() and t.isdigit() and len(t) < 20 else (1, 0, t) for t in tokens), message)


def sort_problems(problems):
    return sorted(set(problems), key=_pointer_key)


def show(value, limit=72):
    """A value as short one-line JSON for messages."""
    import json  # only on the error path: json imports re

    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    text = " ".join(text.splitlines())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


# --- what every area of the semantic checks shares (spec/*_checks.py, semantic.py)


class Problems:
    """The problems one check finds, each added as (pointer parts, message)."""

    def __init__(self):
        self.items = []

    def add(self, parts, message):
        self.items.append(one_line(f"{pointer(*parts)}: {message}"))


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def as_list(x):
    return x if isinstance(x, list) else []


def as_dict(x):
    return x if isinstance(x, dict) else {}


def typed_entries(entries):
    """(index, type, index of an earlier entry of the same type or None) for the dict
    entries of a list that have a string "type"."""
    seen = {}
    for i, entry in enumerate(as_list(entries)):
        t = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(t, str):
            yield i, t, seen.get(t)
            seen.setdefault(t, i)


def abs_path(p, parts, value, what="must be an absolute path", allow_empty=False):
    """Absolute path check shared by several fields (strings only)."""
    if not isinstance(value, str):
        return
    if value == "":
        if not allow_empty:
            p.add(parts, "must not be empty")
        return
    if "\0" in value:
        p.add(parts, "must not contain a NUL byte")
    elif not value.startswith("/"):
        p.add(parts, f"{show(value)} {what}")


def string_map(value, parts, p, what="keys", empty_ok=False):
    """A map of strings (annotations, sysctl): no empty key; the values the schema leaves
    untyped (keys of only newlines) must be strings."""
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if k == "":
            if empty_ok:
                continue
            p.add(parts, f"{what} must not be empty")
        elif all(c == "\n" for c in k) and not isinstance(v, str):
            # The schema only types values of keys with a non-newline character.
            p.add(parts + (k,), f"{show(v)} is not of type \"string\"")


def parse_id_list(text):
    """Whether ``text`` is a list like ``0-3,7`` (empty allowed)."""
    text = text.strip()
    if not text:
        return True
    for item in text.split(","):
        item = item.strip()
        lo, dash, hi = item.partition("-")
        lo, hi = lo.strip(), hi.strip()
        if not (lo.isascii() and lo.isdigit()) or len(lo) > 9:
            return False
        if dash and (not (hi.isascii() and hi.isdigit()) or len(hi) > 9 or int(hi) < int(lo)):
            return False
    return True
