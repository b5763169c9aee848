"""The schema-pattern predicates for our schema patterns equal re.search (so create needs no re)."""
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.paths import REPO
from pyrunc.config.schema.runtime import FAST_PATTERNS

pytestmark = pytest.mark.unit


def schema_patterns():
    found = set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "pattern":
                    found.add(v)
                elif k == "patternProperties":
                    found.update(v)
                    for x in v.values():
                        walk(x)
                else:
                    walk(v)
        elif isinstance(o, list):
            for x in o:
                walk(x)

    for f in (REPO / "specs").glob("*.json"):
        walk(json.loads(f.read_text()))
    return found


def test_every_schema_pattern_has_a_fast_predicate():
    assert schema_patterns() <= set(FAST_PATTERNS)


EDGE = ["", "\n", "\n\n", "a", "a\n", "CAP_", "CAP_X", "CAP_X\n", "CAP_X\n\n", "CAP_x", "CAP_A_B",
        "xCAP_A", "RLIMIT_NOFILE", "RLIMIT_", "RLIMIT_NO_FILE", "MB:", "MB:\n", "MB:a\nb", "MB:a\n",
        "MB", "0-3,7", "0-3, 7\n", "1a", "2MB", "10GB", "0MB", "1KB\n", "1TB", "2M", "b", "c\n",
        "bb", "u\n\n", "é", "١٢", "CAP_É", "\u0660MB"]
ALPHABET = st.sampled_from(list("ABCPRLIMTXYZ_abcpu:-, 0123456789GKMB\n") + ["é", "١"])


def test_edge_cases():
    for pattern, fast in FAST_PATTERNS.items():
        for s in EDGE:
            assert bool(fast(s)) == bool(re.search(pattern, s)), (pattern, s)


@settings(max_examples=3000, deadline=None)
@given(st.text(ALPHABET, max_size=12), st.sampled_from(sorted(FAST_PATTERNS)))
def test_random_strings(s, pattern):
    prefix = {"^CAP_[A-Z_]+$": "CAP_", "^RLIMIT_[A-Z]+$": "RLIMIT_", "^MB:[^\\n]*$": "MB:"}.get(pattern, "")
    for cand in (s, prefix + s):
        assert bool(FAST_PATTERNS[pattern](cand)) == bool(re.search(pattern, cand)), (pattern, cand)
