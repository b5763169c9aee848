"""docs/NETDEVICES.md says what `events --stats` emits: the keys of its
network_interfaces example are those a real container's stats have."""
import json
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "NETDEVICES.md"


def _doc_example():
    stats = DOC.read_text().split("## Stats", 1)[1]
    block = re.search(r"```json\n(.*?)```", stats, re.S).group(1)
    return json.loads("{" + block + "}")["network_interfaces"]


def test_documented_stats_keys_are_emitted(rt):
    rt.run("nd", rt.bundle(["sleep", "60"]), "--detach")  # its own network namespace
    ev = json.loads(rt.cmd("events", "--stats", "nd").stdout)
    seen = ev["data"]["network_interfaces"]
    assert [i["Name"] for i in seen] == ["lo"]
    documented = _doc_example()
    assert [list(i) for i in seen] == [list(documented[0])]
    assert all(isinstance(v, int) for k, v in seen[0].items() if k != "Name")
