#!/usr/bin/env python3
"""pyrunc vs runc, on this machine, in one run.

    python3 bench/run.py [--pyrunc PATH] [--runc PATH] [--rounds N] [--json OUT]

Both runtimes run the same busybox bundle (pyrunc.tooling.bundle's rootfs and runc's default
spec, terminal false; one config.json per container, only the cgroupsPath differs) and
are alternated round by round (the order flips every round). For every command the wall
time is measured here from spawn to reap (posix_spawn + wait4), with the CPU time and
ru_maxrss of the process from wait4. Reported: medians and the ratio pyrunc/runc.

What is measured (see bench/README.md for the details):
  run          `run --bundle B ID` of /bin/true, foreground (create+start+wait+delete)
  create       `create` of a container whose process is `sleep`
  state        `state ID` of that (created) container
  start        `start ID`
  exec         `exec ID /bin/true` in the running container
  kill+delete  `kill ID KILL`, then (once the init has exited) `delete ID`; both also alone
  list N real  `list` over --list-real real (created) containers
  list N synth `list` over --list-size synthetic stopped containers: one real container
               is run to completion and its state dir is copied N times with new ids (every
               string in state.json equal to the old id is replaced); both runtimes are
               checked to list all of them as stopped and to answer `state` for a copy
  concurrent   --concurrent `create`s started at once: wall time to the last exit, and the
               sum (and max) of the ru_maxrss of the runtime processes (wait4)
  floors       `python3 -S -E -c pass`, `python3 -c pass` (pyrunc's interpreter),
               `pyrunc --version` and `runc --version`

This is a benchmark, not a test: nothing fails on a time. Every container lives under a
private --root per runtime and a test-only relative cgroupsPath; everything is deleted at
the end, also on failure or Ctrl-C.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pyrunc", help="pyrunc binary (default: next to this python, else PATH)")
    ap.add_argument("--runc", help="runc binary (default: runc on PATH)")
    ap.add_argument("--rounds", type=int, default=30, help="rounds of every single-command measurement")
    ap.add_argument("--list-size", type=int, default=1000, help="synthetic containers for `list`")
    ap.add_argument("--list-real", type=int, default=20, help="real created containers for `list`")
    ap.add_argument("--list-rounds", type=int, default=None,
                    help="rounds of the `list` measurements (default: min(--rounds, 15))")
    ap.add_argument("--concurrent", type=int, default=50, help="containers created at once")
    ap.add_argument("--concurrent-rounds", type=int, default=3)
    ap.add_argument("--floor-rounds", type=int, default=None,
                    help="rounds of the start-up floors (default: 2 x --rounds)")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results.json"),
                    help="write the results here (default: bench/results.json)")
    ap.add_argument("--tmp", default=None, help="where to make the work dir (default: $TMPDIR or /tmp)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    a = ap.parse_args(argv)
    if a.list_rounds is None:
        a.list_rounds = min(a.rounds, 15)
    if a.floor_rounds is None:
        a.floor_rounds = 2 * a.rounds
    return a


class Bench:
    def __init__(self, args):
        self.a = args
        self.ws = C.Workspace(args.tmp)
        env = C.clean_env()
        self.rts = []
        self.samples = {}  # op -> runtime -> [Result-ish dicts]
        self.errors = []
        self.extra = {}
        try:
            self.pyrunc = C.find_pyrunc(args.pyrunc, self.ws.dir)
            self.runc = C.find_runc(args.runc)
        except BaseException:
            shutil.rmtree(self.ws.dir, ignore_errors=True)
            raise
        self.python = C.script_interpreter(self.pyrunc)
        self.env = env
        self.spawner = C.make_spawner(env, str(self.ws.dir), self.log)
        self.rts = [C.Runtime("pyrunc", self.pyrunc, self.ws, env, self.spawner),
                    C.Runtime("runc", self.runc, self.ws, env, self.spawner)]

    def log(self, msg):
        if not self.a.quiet:
            print(msg, file=sys.stderr, flush=True)

    def order(self, i):
        return self.rts if i % 2 == 0 else self.rts[::-1]

    def record(self, op, who, res, ok=True):
        if res.rc != 0:
            self.errors.append(f"{op} [{who}]: {' '.join(res.argv[1:])} exited {res.rc}: "
                               f"{res.err.strip()[-300:]}")
            return False
        if ok:
            self.samples.setdefault(op, {}).setdefault(who, []).append(
                {"ms": res.ms, "cpu_ms": res.cpu_ms, "maxrss_kb": res.maxrss_kb})
        return True

    # --- sections ---------------------------------------------------------------------

    def floors(self):
        py = self.python
        cmds = {
            "floor: python3 -S -E -c pass": [py, "-S", "-E", "-c", "pass"],
            "floor: python3 -c pass": [py, "-c", "pass"],
        }
        outdir = str(self.ws.dir)
        for i in range(self.a.floor_rounds):
            for name, argv in (cmds.items() if i % 2 == 0 else list(cmds.items())[::-1]):
                self.record(name, "pyrunc", C.run_timed(self.spawner, argv, outdir, keep_output=False))
            for rt in self.order(i):
                self.record("--version", rt.name, C.run_timed(self.spawner, [rt.binary, "--version"],
                                                              outdir, keep_output=False))

    def lifecycle_round(self, i, rt):
        """run; create, state, start, exec, kill, delete: one container each."""
        root = rt.root("main")
        rec = self.record
        cid = f"{rt.tag}-run-{i}"
        b = self.ws.bundle(cid, ["/bin/true"])
        res = rt.cmd(root, "run", "--bundle", b, cid, keep_output=False)
        rec("run", rt.name, res)
        if res.rc != 0:
            rt.cmd(root, "delete", "--force", cid, keep_output=False)

        cid = f"{rt.tag}-c-{i}"
        b = self.ws.bundle(cid, ["/bin/sleep", "1000"])
        res = rt.cmd(root, "create", "--bundle", b, cid, keep_output=False)
        if not rec("create", rt.name, res):
            rt.cmd(root, "delete", "--force", cid, keep_output=False)
            return
        try:
            res = rt.cmd(root, "state", cid)
            if not rec("state", rt.name, res):
                return
            pid = json.loads(res.out)["pid"]
            if not rec("start", rt.name, rt.cmd(root, "start", cid, keep_output=False)):
                return
            rec("exec", rt.name, rt.cmd(root, "exec", cid, "/bin/true", keep_output=False))
            k = rt.cmd(root, "kill", cid, "KILL", keep_output=False)
            if not rec("kill", rt.name, k):
                return
            C.wait_gone(pid)  # not timed: the init's exit
            d = rt.cmd(root, "delete", cid, keep_output=False)
            if rec("delete", rt.name, d):
                self.samples.setdefault("kill+delete", {}).setdefault(rt.name, []).append(
                    {"ms": k.ms + d.ms, "cpu_ms": k.cpu_ms + d.cpu_ms,
                     "maxrss_kb": max(k.maxrss_kb, d.maxrss_kb)})
        finally:
            if os.path.isdir(os.path.join(root, cid)):
                rt.cmd(root, "delete", "--force", cid, keep_output=False)
            C.reap_children()

    def lifecycle(self):
        kept, self.samples = self.samples, {}
        for rt in self.rts:  # warm-up (byte-code caches, page cache): not recorded
            self.lifecycle_round(-1, rt)
        self.samples = kept
        for i in range(self.a.rounds):
            for rt in self.order(i):
                self.lifecycle_round(i, rt)
            if (i + 1) % 10 == 0:
                self.log(f"  lifecycle round {i + 1}/{self.a.rounds}")

    def setup_list_real(self, rt):
        root = rt.root("list-real")
        for k in range(self.a.list_real):
            cid = f"{rt.tag}-lr-{k:03d}"
            b = self.ws.bundle(cid, ["/bin/sleep", "1000"])
            rt.cmd(root, "create", "--bundle", b, cid, keep_output=False).check()
        n = len(rt.cmd(root, "list", "-q").check().out.split())
        if n != self.a.list_real:
            raise C.BenchError(f"{rt.name} list -q shows {n} of {self.a.list_real} containers")
        return root

    def setup_list_synth(self, rt):
        """One real container run to completion (stopped), its state dir copied N times."""
        root = rt.root("list-synth")
        src = f"lsrc-{rt.tag}-{os.getpid()}"
        b = self.ws.bundle(src, ["/bin/true"])
        rt.cmd(root, "create", "--bundle", b, src, keep_output=False).check()
        pid = json.loads(rt.cmd(root, "state", src).check().out)["pid"]
        rt.cmd(root, "start", src, keep_output=False).check()
        C.wait_gone(pid)
        st = json.loads(rt.cmd(root, "state", src).check().out)
        if st["status"] != "stopped":
            raise C.BenchError(f"{rt.name}: source container is {st['status']}, not stopped")
        sdir = Path(root, src)
        files = {p.name: p for p in sdir.iterdir()}
        raw = json.loads(files["state.json"].read_bytes())
        patched_paths = []

        def patch(o, new, path=""):
            if isinstance(o, dict):
                return {k: patch(v, new, f"{path}/{k}") for k, v in o.items()}
            if isinstance(o, list):
                return [patch(v, new, f"{path}/{j}") for j, v in enumerate(o)]
            if o == src:
                if new == "syn-00000":
                    patched_paths.append(path or "/")
                return new
            return o

        for k in range(self.a.list_size):
            new = f"syn-{k:05d}"
            d = Path(root, new)
            d.mkdir(mode=0o700)
            for name, p in files.items():
                if name == "state.json":
                    data = json.dumps(patch(raw, new), separators=(",", ":")).encode()
                    (d / name).write_bytes(data)
                    os.chmod(d / name, p.stat().st_mode & 0o7777)
                elif p.is_file():
                    shutil.copy2(p, d / name)
                else:
                    raise C.BenchError(f"{rt.name}: unexpected {p} in a stopped container's state dir")
        # does the runtime accept the copies?
        rows = json.loads(rt.cmd(root, "list", "--format", "json").check().out) or []
        syn = [r for r in rows if r["id"].startswith("syn-")]
        stopped = sum(1 for r in syn if r["status"] == "stopped")
        one = json.loads(rt.cmd(root, "state", "syn-00000").check().out)
        check = {"files_per_dir": sorted(files), "patched_fields": patched_paths,
                 "listed": len(syn), "listed_stopped": stopped,
                 "state_of_copy": {"id": one["id"], "status": one["status"]}}
        if len(syn) != self.a.list_size or stopped != len(syn) or one["id"] != "syn-00000":
            raise C.BenchError(f"{rt.name} does not accept the synthetic state dirs: {check}")
        self.extra.setdefault("list_synthetic_check", {})[rt.name] = check
        return root

    def lists(self):
        roots = {}
        for rt in self.rts:
            roots[rt.name] = (self.setup_list_real(rt), self.setup_list_synth(rt))
        self.log(f"  list: {self.a.list_real} real and {self.a.list_size} synthetic containers per runtime")
        real_op = f"list ({self.a.list_real} real)"
        syn_op = f"list ({self.a.list_size} synthetic)"
        for rt in self.rts:  # warm-up
            rt.cmd(roots[rt.name][1], "list", keep_output=False)
        for i in range(self.a.list_rounds):
            for rt in self.order(i):
                real, syn = roots[rt.name]
                self.record(real_op, rt.name, rt.cmd(real, "list", keep_output=False))
                self.record(syn_op, rt.name, rt.cmd(syn, "list", keep_output=False))
        for rt in self.rts:  # real containers go now, the rest at cleanup
            real = roots[rt.name][0]
            self._delete_all(rt, real, rt.ids(real))

    def _delete_all(self, rt, root, ids, batch=8):
        for i in range(0, len(ids), batch):
            spawned = [self.spawner.spawn(rt.argv(root, "delete", "--force", cid)) for cid in ids[i:i + batch]]
            for pid, _ in spawned:
                self.spawner.wait(pid, 60)
        C.reap_children()

    def concurrent(self):
        n = self.a.concurrent
        out = {}
        for rep in range(self.a.concurrent_rounds):
            for rt in self.order(rep):
                root = rt.root("concurrent")
                ids = [f"{rt.tag}-cc{rep}-{k:03d}" for k in range(n)]
                bundles = [self.ws.bundle(cid, ["/bin/sleep", "1000"]) for cid in ids]
                errs = [str(rt.outdir / f"cc-{k}.err") for k in range(n)]
                spawned = [self.spawner.spawn(rt.argv(root, "create", "--bundle", b, cid), "/dev/null", e)
                           for cid, b, e in zip(ids, bundles, errs)]
                results = [self.spawner.wait(pid, 300) for pid, _ in spawned]
                wall = (max(r[1] for r in results) - min(t for _, t in spawned)) / 1e6
                failed = [(cid, rc, C._read(e).strip()[-200:])
                          for cid, (rc, _, _, _), e in zip(ids, results, errs) if rc != 0]
                rss = [r[3] for r in results]
                listed = len(rt.cmd(root, "list", "-q").out.split())
                out.setdefault(rt.name, []).append({
                    "wall_ms": wall, "sum_maxrss_kb": sum(rss), "max_maxrss_kb": max(rss),
                    "median_maxrss_kb": statistics.median(rss),
                    "sum_cpu_ms": sum(r[2] for r in results), "failed": len(failed),
                    "listed_after": listed})
                for f in failed[:3]:
                    self.errors.append(f"concurrent create [{rt.name}] {f[0]} exited {f[1]}: {f[2]}")
                self._delete_all(rt, root, rt.ids(root))
            self.log(f"  concurrent round {rep + 1}/{self.a.concurrent_rounds}")
        self.extra["concurrent"] = out

    # --- results -------------------------------------------------------------------------

    def summary(self):
        ops = {}
        for op, by in self.samples.items():
            row = {}
            for who, ss in by.items():
                ms = [s["ms"] for s in ss]
                row[who] = {
                    "n": len(ss), "median_ms": statistics.median(ms), "min_ms": min(ms),
                    "max_ms": max(ms),
                    "median_cpu_ms": statistics.median(s["cpu_ms"] for s in ss),
                    "median_maxrss_kb": statistics.median(s["maxrss_kb"] for s in ss),
                    "samples_ms": [round(x, 3) for x in ms],
                }
            if "pyrunc" in row and "runc" in row and row["runc"]["median_ms"] > 0:
                row["ratio"] = row["pyrunc"]["median_ms"] / row["runc"]["median_ms"]
                if row["runc"]["median_cpu_ms"] > 0:
                    row["cpu_ratio"] = row["pyrunc"]["median_cpu_ms"] / row["runc"]["median_cpu_ms"]
            ops[op] = row
        conc = {}
        for who, reps in self.extra.get("concurrent", {}).items():
            conc[who] = {
                "n": len(reps), "containers": self.a.concurrent,
                "median_wall_ms": statistics.median(r["wall_ms"] for r in reps),
                "median_sum_maxrss_kb": statistics.median(r["sum_maxrss_kb"] for r in reps),
                "max_maxrss_kb": max(r["max_maxrss_kb"] for r in reps),
                "median_sum_cpu_ms": statistics.median(r["sum_cpu_ms"] for r in reps),
                "failed": sum(r["failed"] for r in reps),
                "rounds": reps,
            }
        if "pyrunc" in conc and "runc" in conc:
            conc["ratio_wall"] = conc["pyrunc"]["median_wall_ms"] / conc["runc"]["median_wall_ms"]
            conc["ratio_sum_maxrss"] = (conc["pyrunc"]["median_sum_maxrss_kb"]
                                        / conc["runc"]["median_sum_maxrss_kb"])
        return ops, conc

    def meta(self):
        def version(argv):
            r = C.run_timed(self.spawner, argv, str(self.ws.dir))
            return r.out.strip().splitlines()[0] if r.rc == 0 and r.out.strip() else None

        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "pyrunc": self.pyrunc, "pyrunc_version": version([self.pyrunc, "--version"]),
            "runc": self.runc, "runc_version": version([self.runc, "--version"]),
            "python_floor": self.python,
            "python_floor_version": version([self.python, "--version"]),
            "args": vars(self.a),
            "workspace": str(self.ws.dir), "cgroup_prefix": self.ws.cgroup_prefix,
            "spawner": self.spawner.kind,
            "bench_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }


ORDER = ["run", "create", "state", "start", "exec", "kill", "delete", "kill+delete"]


def fmt_table(ops, conc, a):
    lines = []
    hdr = (f"{'what':<30}{'pyrunc ms':>10}{'runc ms':>9}{'ratio':>7}{'py cpu':>8}{'runc cpu':>9}"
           f"{'ratio':>7}{'py MiB':>8}{'runc MiB':>9}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    names = [o for o in ORDER if o in ops] + sorted(o for o in ops if o.startswith("list")) + \
        [o for o in ops if o.startswith("floor") or o == "--version"]
    for op in names:
        row = ops[op]
        p, r = row.get("pyrunc"), row.get("runc")
        label = {"--version": "--version (pyrunc / runc)"}.get(op, op)

        def f(d, k, scale=1.0, w=9, prec=1):
            return f"{d[k] * scale:>{w}.{prec}f}" if d else f"{'-':>{w}}"

        ratio = f"{row['ratio']:>7.1f}" if "ratio" in row else f"{'':>7}"
        cratio = f"{row['cpu_ratio']:>7.1f}" if "cpu_ratio" in row else f"{'':>7}"
        lines.append(f"{label:<30}{f(p, 'median_ms', w=10)}{f(r, 'median_ms')}{ratio}"
                     f"{f(p, 'median_cpu_ms', w=8)}{f(r, 'median_cpu_ms')}{cratio}"
                     f"{f(p, 'median_maxrss_kb', 1 / 1024, 8)}{f(r, 'median_maxrss_kb', 1 / 1024)}")
    if conc.get("pyrunc") and conc.get("runc"):
        p, r = conc["pyrunc"], conc["runc"]
        lines.append("")
        title = f"{a.concurrent} concurrent creates (median of {p['n']})"
        lines.append(f"{title:<45}{'pyrunc':>10}{'runc':>12}{'ratio':>8}")
        lines.append(f"{'  wall ms':<45}{p['median_wall_ms']:>10.0f}{r['median_wall_ms']:>12.0f}"
                     f"{conc['ratio_wall']:>8.1f}")
        lines.append(f"{'  sum of maxrss MiB (wait4)':<45}{p['median_sum_maxrss_kb'] / 1024:>10.0f}"
                     f"{r['median_sum_maxrss_kb'] / 1024:>12.0f}{conc['ratio_sum_maxrss']:>8.1f}")
        lines.append(f"{'  largest single maxrss MiB':<45}{p['max_maxrss_kb'] / 1024:>10.1f}"
                     f"{r['max_maxrss_kb'] / 1024:>12.1f}")
        lines.append(f"{'  sum of cpu ms':<45}{p['median_sum_cpu_ms']:>10.0f}{r['median_sum_cpu_ms']:>12.0f}"
                     f"{p['median_sum_cpu_ms'] / max(r['median_sum_cpu_ms'], 1e-9):>8.1f}")
        lines.append(f"{'  failed creates':<45}{p['failed']:>10}{r['failed']:>12}")
    return "\n".join(lines)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("bench/run.py needs root (real containers)", file=sys.stderr)
        return 2
    try:
        b = Bench(a)
    except C.BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    C.install_signal_handlers()
    C.set_subreaper()
    t0 = time.monotonic()
    code = 0
    meta = None
    try:
        b.log(f"bench: work dir {b.ws.dir}, cgroup prefix {b.ws.cgroup_prefix}")
        b.ws.build_rootfs()
        meta = b.meta()
        b.log("bench: floors")
        b.floors()
        b.log("bench: lifecycle")
        b.lifecycle()
        b.log("bench: list")
        b.lists()
        b.log("bench: concurrent create")
        b.concurrent()
    except KeyboardInterrupt:
        b.log("bench: interrupted")
        code = 130
    except C.BenchError as e:
        b.log(f"bench: {e}")
        code = 1
    except Exception:  # a bug here: still clean up, still write what was measured
        import traceback

        b.log(traceback.format_exc().rstrip())
        code = 1
    finally:
        problems = C.cleanup(b.ws, b.rts, log=b.log)
    ops, conc = b.summary()
    if meta:
        meta["loadavg_end"] = os.getloadavg()
    result = {"meta": meta or {}, "ops": ops, "concurrent": conc,
              "list_synthetic_check": b.extra.get("list_synthetic_check", {}),
              "errors": b.errors, "cleanup_problems": problems,
              "total_s": time.monotonic() - t0, "complete": code == 0}
    print(fmt_table(ops, conc, a))
    if b.errors:
        print(f"\n{len(b.errors)} command(s) failed (not in the medians):")
        for e in b.errors[:10]:
            print(f"  {e}")
    print(f"\ntotal {result['total_s']:.0f} s; rounds {a.rounds} (list {a.list_rounds}, "
          f"floors {a.floor_rounds}, concurrent {a.concurrent_rounds}); ratio = pyrunc/runc of medians; "
          f"cpu = user+sys ms, MiB = ru_maxrss (wait4), medians; "
          f"load average {meta['loadavg_start'][0]:.1f} at start, {meta['loadavg_end'][0]:.1f} at the end"
          if meta else "")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"json: {a.json}")
    if problems and code == 0:
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
