"""JSON on the hot path through the `_json` C accelerator directly.

`import json` costs ~8 ms here because json.decoder imports `re` (and `re` imports
`enum`); the C scanner and encoder need neither. Errors fall back to the json module,
so messages are the standard ones (error paths are not hot).
"""
import _json

_WS = " \t\n\r"


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo = {}


_scan = _json.make_scanner(_ScanContext())
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",",
                             False, False, True)
_encode_spaced = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ": ", ", ",
                                    False, False, True)


def loads(text, parse_constant=None):
    """json.loads for str or bytes (UTF-8). NaN/Infinity are rejected unless
    parse_constant says otherwise (then the json module parses)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if parse_constant is None:
        try:
            i = 0
            n = len(text)
            while i < n and text[i] in _WS:
                i += 1
            obj, end = _scan(text, i)
            while end < n and text[end] in _WS:
                end += 1
            if end == n:
                _ScanContext.memo.clear()
                return obj
        except (StopIteration, ValueError, RecursionError, SystemError):
            pass  # SystemError: the C scanner's on '{' + a bare word (a CPython quirk)
        _ScanContext.memo.clear()
        parse_constant = _reject_constant
    import json  # the slow path, for its exact error (or a custom parse_constant)

    return json.loads(text, parse_constant=parse_constant)


def dumps(obj, spaced=False):
    """Compact JSON (or json.dumps' default ", "/": " separators with spaced=True)."""
    return "".join((_encode_spaced if spaced else _encode)(obj, 0))


def dumps_indent(obj, indent="  ", _level=0):
    """json.dumps(obj, indent=...) for JSON data (dicts, lists, scalars)."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        pad = "\n" + indent * (_level + 1)
        inner = ("," + pad).join(_json.encode_basestring_ascii(str(k)) + ": " +
                                 dumps_indent(v, indent, _level + 1) for k, v in obj.items())
        return "{" + pad + inner + "\n" + indent * _level + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        pad = "\n" + indent * (_level + 1)
        inner = ("," + pad).join(dumps_indent(v, indent, _level + 1) for v in obj)
        return "[" + pad + inner + "\n" + indent * _level + "]"
    return "".join(_encode(obj, 0))


def deep_copy(doc):
    """A copy of a JSON document that shares no dict or list with it (tuples stay
    tuples; anything else is shared, as immutable): copy.deepcopy without importing
    `copy` (~0.7 ms with weakref, on exec's path)."""
    if isinstance(doc, dict):
        return {k: deep_copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [deep_copy(v) for v in doc]
    if isinstance(doc, tuple):
        return tuple(deep_copy(v) for v in doc)
    return doc
