"""Problems as one-line strings ``"<JSON pointer>: <message>"`` (the root is ``/``),
shared by the schema and the semantic checks."""
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
