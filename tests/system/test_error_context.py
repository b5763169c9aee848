"""An OSError reaches the user with its file and operation, never as
"[Errno 28] No space left on device" alone (issue 14, point 10)."""
import os
import subprocess

import pytest

from support.checks import one_line_error


def _tiny_fs(tmp_path, spare_pages=0):
    """A 64k tmpfs, filled up but for ``spare_pages`` pages."""
    d = tmp_path / "full"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], check=True)
    (d / "root").mkdir()
    for i in range(spare_pages):
        (d / f"spare{i}").write_bytes(b"\0" * 4096)
    fd = os.open(d / "fill", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    os.close(fd)
    for i in range(spare_pages):
        (d / f"spare{i}").unlink()
    return d


@pytest.fixture
def full_fs(tmp_path):
    try:
        yield _tiny_fs(tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "full")], check=False)


@pytest.fixture
def nearly_full_fs(tmp_path):
    """Room for create.json (one page), none for state.json."""
    try:
        yield _tiny_fs(tmp_path, spare_pages=1)
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "full")], check=False)


def test_no_space_for_the_state_names_file_and_operation(rt, nearly_full_fs):
    """It was "[Errno 28] No space left on device", from the CLI's last resort."""
    b = rt.bundle(["sleep", "10"])
    root = nearly_full_fs / "root"
    p = rt.cmd("--root", root, "create", "--bundle", b, "c1", check=False)
    line = one_line_error(p)
    assert (f"saving the state of container c1: writing {root}/c1/.state.json.tmp" in line
            and line.endswith(": No space left on device\"")), line
    assert "Errno" not in line
    assert os.listdir(root) == []


def test_no_space_at_all(rt, full_fs):
    b = rt.bundle(["sleep", "10"])
    root = full_fs / "root"
    line = one_line_error(rt.cmd("--root", root, "create", "--bundle", b, "c1", check=False))
    assert f"writing {root}/c1/create.json: No space left on device" in line, line
    assert os.listdir(root) == []


def test_full_log_file_is_no_traceback(rt, full_fs):
    p = rt.cmd("--log", full_fs / "log.json", "--log-format", "json", "state", "nope", check=False)
    assert "container nope does not exist" in one_line_error(p)


def test_root_that_is_a_file(rt, tmp_path):
    """`list` said "[Errno 20] Not a directory: ..." (no operation), `update` too."""
    f = tmp_path / "afile"
    f.write_text("")
    assert one_line_error(rt.cmd("--root", f, "list", check=False)).endswith(
        f'msg="listing the containers in {f}: Not a directory"')
    assert "container x does not exist" in one_line_error(rt.cmd("--root", f, "update", "x", check=False))
