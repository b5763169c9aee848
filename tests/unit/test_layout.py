"""The layout's rules a reader relies on (issue 16, items 2 and 3): no module of pyrunc/
over 400 lines without its reason in its docstring, and no module left at the top of the
package that belongs in a subpackage."""
import ast

import pytest

from support.paths import REPO

pytestmark = pytest.mark.unit

LIMIT = 400
REASON = "(Over 400 lines:"
# the public API and what every layer shares; everything else lives in a subpackage
TOP_LEVEL = {"__init__.py", "__main__.py", "api.py", "options.py", "events.py", "errors.py",
             "log.py", "features.py"}


def test_long_modules_say_why():
    long = []
    for path in sorted((REPO / "pyrunc").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > LIMIT and REASON not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert long == [], "over 400 lines without a reason in the docstring:\n" + "\n".join(long)


def test_the_top_level_holds_only_the_api_and_what_every_layer_shares():
    top = {p.name for p in (REPO / "pyrunc").glob("*.py")}
    assert top <= TOP_LEVEL, sorted(top - TOP_LEVEL)
