#!/usr/bin/env python3
"""Run the conformance cases against one or more OCI runtimes.

    RUNTIME=/path/to/pyrunc python3 conformance/run.py        # default: pyrunc on PATH
    RUNTIMES=runc,/path/to/pyrunc python3 conformance/run.py  # side-by-side table
    python3 conformance/run.py -k hooks --json out.json

Exit status: 0 if no case FAILs, 1 if one does (for any runtime run; known runc
deviations against runc are XFAIL, not FAIL), 2 on a usage or set-up error.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance import bundle as B  # noqa: E402
from conformance.cases import SPEC_VERSION, Case, load_cases  # noqa: E402

PASS, FAIL, SKIP, XFAIL, XPASS = "PASS", "FAIL", "SKIP", "XFAIL", "XPASS"


def resolve_runtime(spec: str) -> str | None:
    """An absolute path for a runtime given as a path or a name on PATH."""
    if os.sep in spec:
        path = os.path.abspath(spec)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(spec)


def is_reference(binary: str) -> bool:
    """True for runc (the reference implementation; its known deviations are XFAIL)."""
    return os.path.basename(os.path.realpath(binary)) == "runc"


def run_case(case: Case, binary: str, *, verbose: bool = False) -> dict:
    """Run one case against one runtime binary; always cleans up.

    Returns {"status", "reason", "duration"}; status is PASS/FAIL/SKIP/XFAIL/XPASS."""
    t0 = time.monotonic()
    status, reason = PASS, ""
    ctx = None
    try:
        ctx = B.Ctx(binary, case.id)
        case.func(ctx)
    except B.CaseSkipped as e:
        status, reason = SKIP, str(e)
    except B.CaseFailed as e:
        status, reason = FAIL, str(e)
    except Exception as e:  # a bug in a case or a host problem: still a failure, with detail
        status, reason = FAIL, f"error: {type(e).__name__}: {e}"
        if verbose:
            traceback.print_exc()
    finally:
        problems = ctx.cleanup() if ctx is not None else []
    if problems:
        note = "; ".join(problems)
        if status == PASS:
            status, reason = FAIL, f"cleanup: {note}"
        else:
            reason = f"{reason} [cleanup: {note}]"
    if case.runc_deviation and is_reference(binary):
        if status == FAIL:
            status, reason = XFAIL, f"known runc deviation: {case.runc_deviation} (observed: {reason})"
        elif status == PASS:
            status, reason = XPASS, f"known runc deviation did not show: {case.runc_deviation}"
    return {"status": status, "reason": " ".join(reason.split()), "duration": round(time.monotonic() - t0, 3)}


def select(cases: list[Case], patterns: list[str] | None) -> list[Case]:
    if not patterns:
        return cases
    pats = [p.lower() for p in patterns]
    return [c for c in cases if any(p in c.id.lower() or p in c.ref.lower() for p in pats)]


def _cell(res: dict, width: int | None) -> str:
    text = res["status"] if not res["reason"] else f"{res['status']}: {res['reason']}"
    if width and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def run_suite(cases: list[Case], runtimes: list[tuple[str, str]], *, out=sys.stdout,
              verbose: bool = False) -> dict:
    """Run ``cases`` against every (name, binary) in ``runtimes``, printing a table."""
    idw = max([len("case")] + [len(c.id) for c in cases])
    refw = max([len("clause")] + [len(c.ref) for c in cases])
    term = shutil.get_terminal_size((160, 24)).columns
    colw = None
    if len(runtimes) > 1:
        colw = max(24, (term - idw - refw - 4) // len(runtimes) - 2)
    head = f"{'case':<{idw}}  {'clause':<{refw}}  " + "  ".join(
        f"{name:<{colw}}" if colw else name for name, _ in runtimes)
    print(head.rstrip(), file=out)
    print("-" * min(len(head), term), file=out)
    results: dict[str, dict[str, dict]] = {}
    t0 = time.monotonic()
    for case in cases:
        row = results[case.id] = {}
        for name, binary in runtimes:
            row[name] = run_case(case, binary, verbose=verbose)
        cells = [_cell(row[name], colw) for name, _ in runtimes]
        line = f"{case.id:<{idw}}  {case.ref:<{refw}}  " + "  ".join(
            f"{c:<{colw}}" if colw else c for c in cells)
        print(line.rstrip(), file=out, flush=True)
    elapsed = time.monotonic() - t0
    B.remove_empty_prefix_dirs()
    leftovers = B.leftover_prefix_dirs()

    summary = {}
    print(file=out)
    for name, binary in runtimes:
        counts = {s: 0 for s in (PASS, FAIL, XFAIL, XPASS, SKIP)}
        dur = 0.0
        for cid in results:
            counts[results[cid][name]["status"]] += 1
            dur += results[cid][name]["duration"]
        summary[name] = dict(counts, duration=round(dur, 2))
        extra = ", ".join(f"{v} {k}" for k, v in counts.items() if k != PASS and v)
        print(f"{name} ({binary}): {counts[PASS]} passed" + (f", {extra}" if extra else "")
              + f" in {dur:.1f}s", file=out)
    details = [(cid, name, r) for cid, row in results.items() for name, r in row.items()
               if r["status"] in (FAIL, XFAIL, XPASS) and colw]
    if details:
        print("\ndetails:", file=out)
        for cid, name, r in details:
            print(f"  {cid} [{name}] {r['status']}: {r['reason']}", file=out)
    if leftovers:
        print(f"\nWARNING: test cgroup prefix dirs left: {', '.join(leftovers)}", file=out)
    return {
        "spec": SPEC_VERSION,
        "runtimes": [{"name": n, "binary": b, "reference": is_reference(b)} for n, b in runtimes],
        "cases": [{"id": c.id, "ref": c.ref, "title": c.title, "runc_deviation": c.runc_deviation,
                   "results": results[c.id]} for c in cases],
        "summary": summary,
        "elapsed": round(elapsed, 2),
        "leftover_cgroups": leftovers,
    }


def runtimes_from_env(env=os.environ) -> list[tuple[str, str]] | str:
    """[(display name, binary)] from RUNTIMES / RUNTIME, or an error string."""
    specs = [s.strip() for s in env.get("RUNTIMES", "").split(",") if s.strip()]
    if not specs:
        specs = [env.get("RUNTIME") or "pyrunc"]
    out = []
    for spec in specs:
        binary = resolve_runtime(spec)
        if binary is None:
            return f"runtime {spec!r} not found (set RUNTIME=/path/to/binary)"
        name = spec if os.sep not in spec else os.path.basename(spec)
        if any(n == name for n, _ in out):
            name = spec
        out.append((name, binary))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", action="append", metavar="SUBSTRING",
                    help="only cases whose id or clause contains SUBSTRING (repeatable: any)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="tracebacks for case errors")
    args = ap.parse_args(argv)

    cases = select(load_cases(), args.k)
    if args.list:
        for c in cases:
            dev = f"  [runc deviation: {c.runc_deviation}]" if c.runc_deviation else ""
            print(f"{c.id:<34} {c.ref:<40} {c.title}{dev}")
        return 0
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("conformance cases create real containers: run as root", file=sys.stderr)
        return 2
    if not os.path.isfile(B.BUSYBOX):
        print(f"busybox not found at {B.BUSYBOX}: apt-get install busybox-static", file=sys.stderr)
        return 2
    runtimes = runtimes_from_env()
    if isinstance(runtimes, str):
        print(runtimes, file=sys.stderr)
        return 2
    report = run_suite(cases, runtimes, verbose=args.verbose)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    failed = any(r["status"] == FAIL for c in report["cases"] for r in c["results"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
