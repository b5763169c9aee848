"""Device cgroup rules: OCI -> rules, runc's default allowed devices, and an
emulator of the cgroup v1 devices controller used to compute the minimal set of
devices.allow/devices.deny writes (the approach of runc's devices emulator).

Kernel semantics (security/device_cgroup.c) that the emulator follows:
  * a rule of type "a" resets the whole cgroup: devices.allow "a" -> allow all
    (blacklist mode), devices.deny "a" -> deny all (whitelist mode), whatever
    its major/minor/access;
  * in whitelist mode an allow rule adds an exception (access bits are or-ed
    into an exception with the same type/major/minor) and a deny rule removes
    access bits from the exception with exactly the same type/major/minor;
  * in blacklist mode the roles are swapped.
"""

from pyrunc.cgroups.fs import error

WILDCARD = -1
_PERMS = "rwm"


class Rule:
    __slots__ = ("type", "major", "minor", "perms", "allow")

    def __init__(self, type, major, minor, perms, allow):
        self.type = type
        self.major = major
        self.minor = minor
        self.perms = perms  # a string, canonical order "rwm"
        self.allow = allow

    def cgroup_string(self):
        ma = "*" if self.major == WILDCARD else str(self.major)
        mi = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {ma}:{mi} {self.perms}"

    def __repr__(self):
        return f"<{'allow' if self.allow else 'deny'} {self.cgroup_string()}>"

    def __eq__(self, other):
        return isinstance(other, Rule) and (
            self.type, self.major, self.minor, self.perms, self.allow) == (
            other.type, other.major, other.minor, other.perms, other.allow)


def _canon(perms):
    return "".join(p for p in _PERMS if p in perms)


# runc's specconv.AllowedDevices, in runc's order: (path or None, rule).
_DEFAULTS = (
    (None, "c", WILDCARD, WILDCARD, "m"),
    (None, "b", WILDCARD, WILDCARD, "m"),
    ("/dev/null", "c", 1, 3, "rwm"),
    ("/dev/random", "c", 1, 8, "rwm"),
    ("/dev/full", "c", 1, 7, "rwm"),
    ("/dev/tty", "c", 5, 0, "rwm"),
    ("/dev/zero", "c", 1, 5, "rwm"),
    ("/dev/urandom", "c", 1, 9, "rwm"),
    (None, "c", 136, WILDCARD, "rwm"),  # /dev/pts/*
    (None, "c", 5, 2, "rwm"),  # /dev/ptmx
    (None, "c", 10, 200, "rwm"),  # /dev/net/tun
)


def default_rules(linux_devices=None):
    """runc's default allowed device rules. A default with a path that is also
    listed in the config's ``linux.devices`` is dropped (the spec's entry takes
    priority, as in runc's createDevices)."""
    paths = {d.get("path") for d in (linux_devices or ()) if isinstance(d, dict)}
    return [Rule(t, ma, mi, p, True) for path, t, ma, mi, p in _DEFAULTS
            if path is None or path not in paths]


def rules_from_oci(devices):
    """linux.resources.devices -> [Rule], validated (runc specconv semantics)."""
    out = []
    for i, d in enumerate(devices or ()):
        if not isinstance(d, dict):
            raise error("devices", f"rule {i} is not an object")
        t = d.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise error("devices", f'rule {i}: invalid device type "{t}" (want a, b or c)')
        major = d.get("major")
        minor = d.get("minor")
        major = WILDCARD if major is None else major
        minor = WILDCARD if minor is None else minor
        for what, v in (("major", major), ("minor", minor)):
            if isinstance(v, bool) or not isinstance(v, int) or v < WILDCARD:
                raise error("devices", f"rule {i}: invalid {what} {v!r}")
        access = d.get("access") or ""
        if not access:
            raise error("devices", f"rule {i}: device access cannot be empty")
        if not isinstance(access, str) or any(c not in _PERMS for c in access):
            raise error("devices", f'rule {i}: invalid access "{access}" (want a combination of r, w, m)')
        allow = d.get("allow")
        if not isinstance(allow, bool):
            raise error("devices", f"rule {i}: \"allow\" must be true or false")
        out.append(Rule(t, major, minor, _canon(access), allow))
    return out


class Emulator:
    """The state of a v1 devices cgroup: default policy + exceptions."""

    __slots__ = ("default_allow", "rules")

    def __init__(self, default_allow=False):
        self.default_allow = default_allow
        self.rules = {}  # (type, major, minor) -> perms string

    def __eq__(self, other):
        return (isinstance(other, Emulator) and self.default_allow == other.default_allow
                and self.rules == other.rules)

    @property
    def is_blacklist(self):
        return self.default_allow

    def apply(self, rule):
        if rule.type == "a":
            # Any "a" rule resets the state (the kernel ignores major/minor/access).
            self.default_allow = rule.allow
            self.rules = {}
            return
        key = (rule.type, rule.major, rule.minor)
        if rule.allow == self.default_allow:
            self._rm(key, rule)
        else:
            self.rules[key] = _canon(self.rules.get(key, "") + rule.perms)

    def _rm(self, key, rule):
        t, ma, mi = key
        # cgroup v1 silently ignores a request to remove part of a wildcard
        # exception; refuse it rather than give a false sense of security.
        for partial in ((t, WILDCARD, mi), (t, ma, WILDCARD), (t, WILDCARD, WILDCARD)):
            if partial == key:
                continue
            have = self.rules.get(partial, "")
            if any(p in have for p in rule.perms):
                pm = Rule(t, partial[1], partial[2], have, not rule.allow)
                raise error("devices", f'rule "{rule.cgroup_string()}" '
                            f'({"allow" if rule.allow else "deny"}) cannot be applied: '
                            f'it would punch a hole in the wildcard rule "{pm.cgroup_string()}"')
        left = "".join(p for p in self.rules.get(key, "") if p not in rule.perms)
        if left:
            self.rules[key] = left
        else:
            self.rules.pop(key, None)

    @classmethod
    def from_rules(cls, rules):
        e = cls(default_allow=False)
        for r in rules:
            e.apply(r)
        return e

    @classmethod
    def from_list(cls, text):
        """Parse devices.list (every line is an allow entry)."""
        e = cls(default_allow=False)
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                t, mm, perms = line.split()
                ma, mi = mm.split(":")
                ma = WILDCARD if ma == "*" else int(ma)
                mi = WILDCARD if mi == "*" else int(mi)
            except ValueError:
                raise error("devices", f'cannot parse devices.list line "{line}"') from None
            e.apply(Rule(t, ma, mi, _canon(perms), True))
        return e

    def transition(self, target):
        """The writes that turn this state into ``target`` (runc's Transition)."""
        out = []
        old = self.rules
        # devices.list cannot show deny exceptions of a blacklist cgroup, so a
        # blacklist source (or a change of default) always starts with a reset.
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(Rule("a", WILDCARD, WILDCARD, "rwm", target.default_allow))
            old = {}
        for key in sorted(old):
            dropped = "".join(p for p in old[key] if p not in target.rules.get(key, ""))
            if dropped:
                out.append(Rule(key[0], key[1], key[2], dropped, target.default_allow))
        for key in sorted(target.rules):
            gained = "".join(p for p in target.rules[key] if p not in old.get(key, ""))
            if gained:
                out.append(Rule(key[0], key[1], key[2], gained, not target.default_allow))
        return out


def all_rules(oci_devices, linux_devices=None):
    """The rules as runc builds them: the config's, in order, then the defaults."""
    return rules_from_oci(oci_devices) + default_rules(linux_devices)


def target_emulator(oci_devices, linux_devices=None):
    """The device state runc would apply: the config's rules, then the defaults."""
    return Emulator.from_rules(all_rules(oci_devices, linux_devices))


def ordered_writes(rules):
    """The writes that apply rules (all_rules) in their order from an empty allowlist
    (the emulator's start, as runc's): config-linux.md "The runtime MUST apply entries
    in the listed order", and devices.list then lists them in that order. runc 1.1
    writes the same state as a transition in (type, major, minor) order instead."""
    if rules and rules[0].type == "a":
        return list(rules)
    return [Rule("a", WILDCARD, WILDCARD, "rwm", False)] + list(rules)
