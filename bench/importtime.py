#!/usr/bin/env python3
"""Where pyrunc's time goes, per command path: imports (-X importtime) and a cProfile.

    python3 bench/importtime.py [--pyrunc PATH] [--repeat N] [--top N] [--json OUT]

For each of create, start, state, kill, delete, exec and list, a real container's command
is run N times under `python -X importtime` (pyrunc's own interpreter, as its console
script) and the import tree is reported with medians: the interpreter start-up part (up to
and including `site`, which runs the .pth hooks of the environment) and the command part
(everything imported after `site`). Notes:
- a forked child of the runtime (create's stage-1 and init, exec's helper) inherits
  -X importtime and writes to the same stderr: its imports are in the tree too. They cost
  the command's latency as well, since the parent waits for the child.
- times are wall-clock per import on a possibly busy machine: look at the medians and
  the proportions, not single microseconds.
Then one `pyrunc create`, `start` and `state` each run under `python -m cProfile -o`
(the console script as the profiled program); the top entries by cumulative time are
printed (and by own time for create).
"""
import argparse
import io
import json
import os
import pstats
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

COMMANDS = ["create", "state", "start", "exec", "list", "kill", "delete"]


# --- -X importtime parsing ----------------------------------------------------------------


class Node:
    __slots__ = ("name", "self_us", "cum_us", "level", "children")

    def __init__(self, name, self_us, cum_us, level):
        self.name, self.self_us, self.cum_us, self.level = name, self_us, cum_us, level
        self.children = []


def parse_importtime(text):
    """The import tree (roots in import order) from -X importtime's stderr lines."""
    pending = {}
    for line in text.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        fields = line[len("import time:"):].split("|")
        if len(fields) != 3:
            continue
        self_us, cum_us, raw = int(fields[0]), int(fields[1]), fields[2]
        level = (len(raw) - len(raw.lstrip()) - 1) // 2
        n = Node(raw.strip(), self_us, cum_us, level)
        n.children = pending.pop(level + 1, [])
        pending.setdefault(level, []).append(n)
    return pending.get(0, [])


def split_phases(roots, baseline=()):
    """(start-up roots, command roots): start-up is everything up to and including `site`,
    or without site the leading roots that `-c pass` imports too (`baseline`)."""
    names = [r.name for r in roots]
    if "site" in names:
        i = names.index("site") + 1
        return roots[:i], roots[i:]
    i = 0
    while i < len(roots) and roots[i].name in baseline:
        i += 1
    return roots[:i], roots[i:]


def walk(nodes, path=()):
    for n in nodes:
        yield n, path
        yield from walk(n.children, path + (n.name,))


def flat(nodes):
    """module -> (self_us, cum_us), first occurrence (a module shows once per process)."""
    out = {}
    for n, _ in walk(nodes):
        out.setdefault(n.name, (n.self_us, n.cum_us))
    return out


# --- running -------------------------------------------------------------------------------


class Runner:
    def __init__(self, args):
        self.a = args
        self.ws = C.Workspace(args.tmp)
        try:
            self.pyrunc = C.find_pyrunc(args.pyrunc, self.ws.dir)
        except BaseException:
            import shutil

            shutil.rmtree(self.ws.dir, ignore_errors=True)
            raise
        self.script = C.python_script(self.pyrunc)  # what runs under -X importtime
        self.python = C.script_interpreter(self.script)
        self.env = C.clean_env()
        self.rt = C.Runtime("pyrunc", self.pyrunc, self.ws, self.env, C.DirectSpawner(self.env))
        self.root = self.rt.root("importtime")
        self.n = 0

    def py(self, *pre, args):
        """[python, *pre, pyrunc-script, --root, root, *args]: the console script run by its
        own interpreter, as its #! line does."""
        return [self.python, *pre, self.script, "--root", self.root, *map(str, args)]

    def nosite_paths(self):
        """Where this interpreter imports pyrunc and _cffi_backend from (for -S runs)."""
        code = ("import os, pyrunc, _cffi_backend as c; "
                "print(os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))); "
                "print(os.path.dirname(os.path.abspath(c.__file__)))")
        res = self.run([self.python, "-c", code])
        paths = []
        for p in res.out.split("\n"):
            if p and p not in paths:
                paths.append(p)
        return paths

    def py_nosite(self, *pre, args):
        """pyrunc's main() under `python -S` with sys.path = [pyrunc's dir, cffi's dir]:
        what pyrunc itself imports when site (and an editable-install finder) preloaded
        nothing."""
        code = (f"import sys; sys.path[:0] = {self._nosite!r}; sys.argv[0] = 'pyrunc'; "
                "from pyrunc.cli import main; main()")
        return [self.python, "-S", *pre, "-c", code, "--root", self.root, *map(str, args)]

    def run(self, argv, check=True):
        self.n += 1
        out = str(self.rt.outdir / f"o{self.n}")
        err = str(self.rt.outdir / f"e{self.n}")
        rc, ms, cpu, rss = self.rt.spawner.run(argv, out, err, 120)
        res = C.Result(argv, rc, ms, cpu, rss, C._read(out), C._read(err))
        return res.check() if check else res

    def importtimes(self, mode):
        """({command: [tree per repeat]}, baseline module names) for mode "installed" (the
        console script) or "nosite" (python -S, see py_nosite)."""
        if mode == "nosite":
            self._nosite = self.nosite_paths()
            py = self.py_nosite
            base = self.run([self.python, "-S", "-X", "importtime", "-c", "pass"])
        else:
            py = self.py
            base = self.run([self.python, "-X", "importtime", "-c", "pass"])
        baseline = {n.name for n, _ in walk(parse_importtime(base.err))}
        trees = {c: [] for c in COMMANDS}
        it = ("-X", "importtime")
        for i in range(self.a.repeat + 1):  # the first lap warms caches: dropped
            cid = f"it-{mode}-{i}"
            b = self.ws.bundle(cid, ["/bin/sleep", "1000"])
            got = {}
            got["create"] = self.run(py(*it, args=["create", "--bundle", b, cid]))
            got["state"] = self.run(py(*it, args=["state", cid]))
            pid = json.loads(got["state"].out)["pid"]
            got["start"] = self.run(py(*it, args=["start", cid]))
            got["exec"] = self.run(py(*it, args=["exec", cid, "/bin/true"]))
            got["list"] = self.run(py(*it, args=["list"]))
            got["kill"] = self.run(py(*it, args=["kill", cid, "KILL"]))
            C.wait_gone(pid)
            got["delete"] = self.run(py(*it, args=["delete", cid]))
            C.reap_children()
            if i > 0:
                for c in COMMANDS:
                    trees[c].append(parse_importtime(got[c].err))
        return trees, baseline

    def profiles(self):
        out = {}
        cid = "prof-0"
        b = self.ws.bundle(cid, ["/bin/sleep", "1000"])
        for cmd, args in (("create", ["create", "--bundle", b, cid]), ("state", ["state", cid]),
                          ("start", ["start", cid])):
            # _forkprof, not `-m cProfile`: the command ends with os._exit (no teardown)
            base = str(self.ws.dir / f"{cmd}.prof")
            tool = str(Path(__file__).resolve().parent / "_forkprof.py")
            res = self.run([self.python, tool, base, self.script, "--root", self.root, *args])
            out[cmd] = (base + ".main", res.ms)
        pid = json.loads(self.run(self.py(args=["state", cid])).out)["pid"]
        self.run(self.py(args=["kill", cid, "KILL"]))
        C.wait_gone(pid)
        self.run(self.py(args=["delete", cid]))
        return out

    def child_profiles(self):
        """create under _forkprof.py: the runtime process and every child it forks (the
        init's profile is dumped at its execve, i.e. after `start`). {label: path}."""
        import glob
        import time

        cid = "prof-1"
        b = self.ws.bundle(cid, ["/bin/sleep", "1000"])
        base = str(self.ws.dir / "forkprof")
        tool = str(Path(__file__).resolve().parent / "_forkprof.py")
        self.run([self.python, tool, base, self.script, "--root", self.root, "create", "--bundle", b, cid])
        pid = json.loads(self.run(self.py(args=["state", cid])).out)["pid"]
        self.run(self.py(args=["start", cid]))
        in_rootfs = str(self.ws.rootfs / "tmp" / "forkprof")
        deadline = time.monotonic() + 5
        while not glob.glob(in_rootfs + ".exec.*") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.run(self.py(args=["kill", cid, "KILL"]))
        C.wait_gone(pid)
        self.run(self.py(args=["delete", cid]))
        found = {}
        for path in sorted(glob.glob(base + ".*")) + sorted(glob.glob(in_rootfs + ".*")):
            tag = path.rsplit("forkprof.", 1)[1]
            if path.startswith(in_rootfs):
                dst = base + ".container-" + tag
                os.replace(path, dst)
                path = dst
            found[tag] = path
        return found


# --- reporting -----------------------------------------------------------------------------


def med(xs):
    return statistics.median(xs) if xs else 0


def summarise(trees_by_cmd, baseline):
    """Per command: medians per module (self, cum) in both phases, the first tree's shape."""
    out = {}
    for cmd, trees in trees_by_cmd.items():
        per = {"startup": {}, "command": {}}
        totals = {"startup": [], "command": []}
        for roots in trees:
            su, co = split_phases(roots, baseline)
            for phase, nodes in (("startup", su), ("command", co)):
                totals[phase].append(sum(n.cum_us for n in nodes))
                for name, (s, c) in flat(nodes).items():
                    per[phase].setdefault(name, ([], []))
                    per[phase][name][0].append(s)
                    per[phase][name][1].append(c)
        first = split_phases(trees[0], baseline) if trees else ([], [])
        out[cmd] = {
            "startup_total_us": med(totals["startup"]),
            "command_total_us": med(totals["command"]),
            "modules": {phase: {name: {"self_us": med(s), "cum_us": med(c), "n": len(c)}
                                for name, (s, c) in mods.items()}
                        for phase, mods in per.items()},
            "tree": {"startup": [tree_json(n) for n in first[0]],
                     "command": [tree_json(n) for n in first[1]]},
        }
    return out


def tree_json(n):
    return {"name": n.name, "self_us": n.self_us, "cum_us": n.cum_us,
            "children": [tree_json(c) for c in n.children]}


def fmt_tree(tree, mods, min_us, max_depth, indent=0, lines=None):
    """The import tree with median times, pruned to nodes costing >= min_us."""
    lines = [] if lines is None else lines
    for n in tree:
        m = mods.get(n["name"], {"cum_us": n["cum_us"], "self_us": n["self_us"]})
        if m["cum_us"] < min_us:
            continue
        hidden = [c for c in n["children"] if mods.get(c["name"], c)["cum_us"] < min_us]
        lines.append(f"{m['cum_us'] / 1000:>9.2f} {m['self_us'] / 1000:>8.2f}  {'  ' * indent}{n['name']}"
                     + (f"  (+{len(hidden)} smaller)" if hidden and indent < max_depth else ""))
        if indent < max_depth:
            fmt_tree(n["children"], mods, min_us, max_depth, indent + 1, lines)
    return lines


def print_importtimes(s, a, trees=True, title=""):
    print(f"== {title}imports per command (-X importtime, medians of "
          f"{a.repeat}; ms; cum = with everything it imported) ==\n")
    su = next(iter(s.values()))
    print(f"interpreter start-up (all commands alike): {su['startup_total_us'] / 1000:.1f} ms, "
          f"{len(su['modules']['startup'])} modules" + ("; the heavy part:" if trees else ""))
    if trees:
        print(f"{'cum':>9} {'self':>8}  module")
        print("\n".join(fmt_tree(su["tree"]["startup"], su["modules"]["startup"], a.min_us * 4, 2)))
    for cmd in COMMANDS if trees else ():
        d = s[cmd]
        mods = d["modules"]["command"]
        print(f"\n-- {cmd}: {d['command_total_us'] / 1000:.1f} ms in {len(mods)} modules "
              f"imported after start-up --")
        print(f"{'cum':>9} {'self':>8}  module")
        print("\n".join(fmt_tree(d["tree"]["command"], mods, a.min_us, a.depth)))
    # the matrix
    rows = {}
    for cmd in COMMANDS:
        for name, m in s[cmd]["modules"]["command"].items():
            if m["cum_us"] >= 1000 or name.startswith("pyrunc"):
                rows.setdefault(name, None)
    print(f"\n== cumulative ms per command (modules >= 1 ms somewhere, and all pyrunc.*) ==")
    print(f"{'module':<34}" + "".join(f"{c:>8}" for c in COMMANDS))
    print(f"{'(total after start-up)':<34}" + "".join(
        f"{s[c]['command_total_us'] / 1000:>8.1f}" for c in COMMANDS))
    for name in sorted(rows, key=lambda n: -max(s[c]["modules"]["command"].get(n, {"cum_us": 0})["cum_us"]
                                                 for c in COMMANDS)):
        cells = []
        for c in COMMANDS:
            m = s[c]["modules"]["command"].get(name)
            cells.append(f"{m['cum_us'] / 1000:>8.1f}" if m else f"{'-':>8}")
        print(f"{name[:33]:<34}" + "".join(cells))


def profile_summary(prof, top, sort):
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.strip_dirs().sort_stats(sort).print_stats(top)
    text = buf.getvalue()
    # keep the table only
    i = text.find("   ncalls")
    table = text[i:].rstrip() if i >= 0 else text
    rows = []
    for (fn, line, func), (cc, nc, tt, ct, _) in sorted(
            st.stats.items(), key=lambda kv: -(kv[1][3] if sort == "cumulative" else kv[1][2]))[:top]:
        rows.append({"function": f"{fn}:{line}({func})", "ncalls": nc, "tottime_s": tt, "cumtime_s": ct})
    return table, rows, st.total_tt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pyrunc", help="pyrunc console script (default: next to this python, else PATH)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of every command (medians)")
    ap.add_argument("--top", type=int, default=25, help="cProfile entries shown")
    ap.add_argument("--min-us", type=int, default=300, help="hide imports cheaper than this (us)")
    ap.add_argument("--depth", type=int, default=3, help="import tree depth shown")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "importtime.json"))
    ap.add_argument("--tmp", default=None)
    a = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("bench/importtime.py needs root (real containers)", file=sys.stderr)
        return 2
    try:
        r = Runner(a)
    except C.BenchError as e:
        print(f"importtime: {e}", file=sys.stderr)
        return 2
    C.install_signal_handlers()
    C.set_subreaper()
    code = 0
    result = {"pyrunc": r.pyrunc, "python": r.python, "repeat": a.repeat}
    try:
        r.ws.build_rootfs()
        trees, baseline = r.importtimes("installed")
        s = summarise(trees, baseline)
        result["importtime"] = s
        print_importtimes(s, a)
        trees, baseline = r.importtimes("nosite")
        s = summarise(trees, baseline)
        result["importtime_nosite"] = s
        print()
        print_importtimes(s, a, trees=False, title="python -S, nothing preloaded by site: ")
        profs = r.profiles()
        result["cprofile"] = {}
        for cmd, (prof, ms) in profs.items():
            table, rows, total = profile_summary(prof, a.top, "cumulative")
            print(f"\n== cProfile: pyrunc {cmd} (wall {ms:.0f} ms under the profiler; "
                  f"profiled total {total * 1000:.0f} ms), top {a.top} by cumulative time ==")
            print(table)
            result["cprofile"][cmd] = {"wall_ms": ms, "total_s": total, "top_cumulative": rows}
            if cmd == "create":
                table, rows, _ = profile_summary(prof, 15, "tottime")
                print(f"\n== cProfile: pyrunc create, top 15 by own time ==")
                print(table)
                result["cprofile"][cmd]["top_tottime"] = rows
        result["cprofile_children"] = {}
        for tag, prof in r.child_profiles().items():
            what = {"main": "the runtime process (pyrunc create)"}.get(tag.split(".")[0], None)
            if what is None:
                kind, pid = tag.split(".")[:2]
                what = (f"forked child pid {pid}, profiled from the fork to its "
                        + ("execve (pid 1: the container init; includes waiting for `start`)"
                           if kind == "exec" else "os._exit"))
            table, rows, total = profile_summary(prof, 20, "cumulative")
            print(f"\n== cProfile: pyrunc create, {what}: {total * 1000:.0f} ms profiled, top 20 ==")
            print(table)
            result["cprofile_children"][tag] = {"what": what, "total_s": total, "top_cumulative": rows}
    except KeyboardInterrupt:
        print("importtime: interrupted", file=sys.stderr)
        code = 130
    except C.BenchError as e:
        print(f"importtime: {e}", file=sys.stderr)
        code = 1
    except Exception:  # a bug here: still clean up
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        problems = C.cleanup(r.ws, [r.rt], log=lambda m: print(m, file=sys.stderr))
    result["cleanup_problems"] = problems
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\njson: {a.json}")
    return code or (1 if problems else 0)


if __name__ == "__main__":
    sys.exit(main())
