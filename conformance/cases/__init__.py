"""Case registry.

A case is a plain function taking a :class:`conformance.bundle.Ctx`, registered with
:func:`case`; it passes by returning, fails by raising ``CaseFailed`` (``fail()`` /
``expect()``) and skips with ``skip()``. Its docstring quotes the spec clause it checks.

``runc_deviation`` marks a case that runc (the reference) is known to fail because
runc itself departs from the spec: against runc such a failure is reported as
``XFAIL`` with that reason instead of ``FAIL``; every other runtime must pass it.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable

SPEC_VERSION = "runtime-spec v1.3.0"

# modules in reporting order; any other module in this package is loaded after them
MODULE_ORDER = ("lifecycle", "operations", "process", "config", "linux", "hooks")


@dataclass
class Case:
    id: str
    ref: str
    func: Callable
    title: str
    doc: str
    runc_deviation: str | None = None
    module: str = ""


CASES: dict[str, Case] = {}


def case(id: str, ref: str, *, runc_deviation: str | None = None):
    """Register ``func`` as conformance case ``id`` checking spec clause ``ref``
    (``file.md#anchor`` of the runtime-spec)."""
    def deco(func):
        if id in CASES:
            raise ValueError(f"duplicate conformance case id {id!r}")
        doc = inspect.getdoc(func) or ""
        title = doc.splitlines()[0] if doc else id
        CASES[id] = Case(id, ref, func, title, doc, runc_deviation,
                         func.__module__.rsplit(".", 1)[-1])
        return func
    return deco


def load_cases() -> list[Case]:
    names = [m.name for m in pkgutil.iter_modules(__path__)]
    ordered = [n for n in MODULE_ORDER if n in names] + sorted(n for n in names if n not in MODULE_ORDER)
    for name in ordered:
        importlib.import_module(f"{__name__}.{name}")
    rank = {n: i for i, n in enumerate(ordered)}
    return sorted(CASES.values(), key=lambda c: rank.get(c.module, len(rank)))
