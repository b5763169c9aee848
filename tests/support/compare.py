"""pyrunc next to runc (the reference), the same bundle through both."""


def both_outputs(rt, runc_rt, args, edit=None, **kw):
    """(runc's stdout, pyrunc's stdout) of the same bundle run in the foreground."""
    return runc_rt.output_of(args, edit=edit, **kw), rt.output_of(args, edit=edit, **kw)


def both_runs(rt, runc_rt, edit, cmd):
    """((rc, stdout, stderr, bundle) of pyrunc, the same of runc) for `sh -c cmd` run in
    the foreground, exit status not checked."""
    import uuid

    out = {}
    for r in (rt, runc_rt):
        b = r.bundle(["sh", "-c", cmd or "true"], edit=edit)
        p = r.run(f"c-{uuid.uuid4().hex[:8]}", b, check=False)
        out[r] = (p.returncode, p.stdout, p.stderr, b)
    return out[rt], out[runc_rt]


class ComparisonTable:
    """What runc and pyrunc did, feature by feature (the cgroup_v2 tests record it; with
    PYRUNC_V2_TABLE=FILE the session writes it as docs/CGROUP-V2.md's markdown table)."""

    def __init__(self):
        self.rows = []

    def record(self, nodeid, feature, runc_result, pyrunc_result, note="", same=None):
        """same: whether the two agree, when that is not plain equality (e.g. both fail,
        each with its own message)."""
        if same is None:
            same = str(runc_result) == str(pyrunc_result)
        self.rows.append((feature, str(runc_result), str(pyrunc_result), note, same, nodeid))

    def markdown(self, failed=()):
        def cell(s):
            return s.replace("|", "\\|").replace("\n", "<br>")

        lines = ["| feature | runc 1.1.5 | pyrunc | same | test |", "|---|---|---|---|---|"]
        for feature, theirs, ours, note, same, nodeid in self.rows:
            same = "yes" if same else "no"
            if note:
                same += f" ({note})"
            test = nodeid.split("::")[-1] + (" **FAILED**" if nodeid in failed else "")
            lines.append(f"| {cell(feature)} | {cell(theirs)} | {cell(ours)} | {cell(same)} | {test} |")
        return "\n".join(lines) + "\n"
