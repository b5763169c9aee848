"""Checks more than one module makes."""
import time


def wait_for(pred, timeout=10.0, interval=0.02):
    """Poll pred() until it is true or `timeout` seconds passed; its last value (as bool)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def one_line_error(p, returncode=None):
    """The one line of stderr of a failed command: non-zero exit (or exactly
    `returncode`), one line (split as a terminal would, \\r included), no traceback,
    no "internal error"."""
    if returncode is None:
        assert p.returncode != 0, f"exit 0; stdout: {p.stdout!r}"
    else:
        assert p.returncode == returncode, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {p.stderr!r}"
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    return lines[0]
