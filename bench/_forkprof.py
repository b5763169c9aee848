"""cProfile a console script *and the children it forks* (used by bench/importtime.py).

    python _forkprof.py OUTBASE SCRIPT [ARGS...]

Like `python -m cProfile -o OUTBASE.main SCRIPT ARGS` (also when the script ends with
os._exit, as the installed pyrunc does), and in addition every child the script forks
(os.fork, or pyrunc's clone3, without exec'ing Python again) is profiled from the fork
on: its stats are dumped when it calls os._exit() or os.execve() to
OUTBASE.<tag>.<pid>.<n>. A child that
has pivot_root'ed into the container no longer sees OUTBASE's directory; it writes to
/tmp/<basename> instead (that is <rootfs>/tmp on the host when /tmp is not a mount).
"""
import cProfile
import itertools
import os
import runpy
import sys


def main():
    outbase, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    prof = cProfile.Profile()
    counter = itertools.count()
    real_exit, real_execve = os._exit, os.execve
    state = {"child": False}

    def dump(tag):
        prof.disable()
        name = f"{os.path.basename(outbase)}.{tag}.{os.getpid()}.{next(counter)}"
        d = os.path.dirname(outbase)
        path = os.path.join(d, name) if os.path.isdir(d) else os.path.join("/tmp", name)
        try:
            prof.dump_stats(path)
        except OSError:
            pass

    def after_fork_in_child():
        # os.fork and pyrunc's clone3 (PyOS_AfterFork_Child) both run this
        prof.disable()
        prof.clear()  # the child's own work only
        state["child"] = True
        prof.enable()

    def _exit(code):
        if state["child"]:
            dump("exit")
        else:  # the installed command ends with os._exit (no SystemExit to catch)
            prof.disable()
            prof.dump_stats(outbase + ".main")
        real_exit(code)

    def execve(*a):
        if state["child"]:
            dump("exec")
        return real_execve(*a)

    os.register_at_fork(after_in_child=after_fork_in_child)
    os._exit, os.execve = _exit, execve
    prof.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code
    else:
        code = 0
    finally:
        prof.disable()
    if not state["child"]:
        prof.dump_stats(outbase + ".main")
    sys.exit(code)


if __name__ == "__main__":
    main()
