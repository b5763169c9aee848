"""pyrunc.util.jsonutil: the hot path's JSON, without the json module (or copy)."""
import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.util import jsonutil

pytestmark = pytest.mark.unit

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_deep_copy_is_deepcopy_for_json(doc):
    got = jsonutil.deep_copy(doc)
    assert got == copy.deepcopy(doc)
    assert json.dumps(got) == json.dumps(doc)


def test_deep_copy_shares_no_container():
    doc = {"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"]}},
           "mounts": [{"options": ["ro"]}], "t": (1, [2])}
    got = jsonutil.deep_copy(doc)
    got["process"]["args"].append("-c")
    got["process"]["capabilities"]["bounding"].clear()
    got["mounts"][0]["options"][0] = "rw"
    got["t"][1].append(3)
    assert doc == {"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_KILL"]}},
                   "mounts": [{"options": ["ro"]}], "t": (1, [2])}
    assert isinstance(got["t"], tuple)


def test_loads_and_dumps_round_trip():
    doc = {"a": [1, 2.5, None, True, "ü"], "b": {"c": ""}}
    assert jsonutil.loads(jsonutil.dumps(doc)) == doc
    assert jsonutil.loads(jsonutil.dumps(doc).encode()) == doc
    with pytest.raises(ValueError):
        jsonutil.loads("NaN")
