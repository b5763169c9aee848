"""README.md gives the two commands; .ci/run must run the test command verbatim."""
import re

from support.paths import REPO


def readme_commands():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def test_readme_has_four_commands_and_ci_runs_the_test_ones():
    """The quick start, the test command and the two guest jobs (cgroup v2, systemd):
    .ci/run runs the last three verbatim, in that order."""
    cmds = readme_commands()
    assert len(cmds) == 4, cmds
    install, test, guest, sd_guest = cmds
    assert "pyrunc run" in install and "pyrunc.tooling.bundle" in install
    assert "pytest" in test
    assert "run-in-v2-guest.sh" in guest and "ci-in-guest.sh" in guest
    assert "run-in-systemd-guest.sh" in sd_guest and "ci-in-guest.sh" in sd_guest
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci and guest in ci and sd_guest in ci
    assert ci.index(test) < ci.index(guest) < ci.index(sd_guest)


def test_readme_performance_is_the_current_table_only():
    """README's Performance section: how to measure, the current table, a pointer; the
    history and the time breakdown live in bench/README.md."""
    text = (REPO / "README.md").read_text()
    perf = text.split("\n## Performance\n", 1)[1].split("\n## ", 1)[0]
    paras = [p for p in perf.strip().split("\n\n")]
    tables = [p for p in paras if p.startswith("|")]
    assert len(tables) == 1 and len(paras) == 3, paras
    assert "bench/README.md" in paras[-1]
    bench = (REPO / "bench" / "README.md").read_text()
    assert "\n## History and where the time goes\n" in bench
    assert "Where the remaining time goes" in bench and "Where the remaining time goes" not in text
