"""The one cffi module, pyrunc.native._lowlevel (out-of-line API mode, compiled at
install time by setup.py: no pycparser or compiler at run time).

Only what Python's `os` lacks. Each C wrapper returns -1 and sets errno on failure;
pyrunc.native.syscalls turns that into OSError. libseccomp.so.2 is not linked: the
C side dlopen()s it on first use (pyrunc_scmp_open), for a config with linux.seccomp.
"""
from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data);
    int umount2(const char *target, int flags);
    int unshare(int flags);
    int setns(int fd, int nstype);
    int sethostname(const char *name, size_t len);
    int setdomainname(const char *name, size_t len);
    int personality(unsigned long persona);
    int prctl(int option, unsigned long arg2, unsigned long arg3,
              unsigned long arg4, unsigned long arg5);

    int pyrunc_pivot_root(const char *new_root, const char *put_old);
    int pyrunc_capget(int pid, uint32_t data[6]);
    int pyrunc_capset(int pid, const uint32_t data[6]);
    long pyrunc_keyctl_join(const char *name);
    int pyrunc_ioprio_set(int which, int who, int ioprio);
    long pyrunc_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode);
    int pyrunc_sched_setattr(int pid, uint32_t policy, uint64_t flags, int32_t nice,
                             uint32_t priority, uint64_t runtime, uint64_t deadline,
                             uint64_t period);
    int pyrunc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                       uint64_t resolve);
    int pyrunc_open_tree(int dirfd, const char *path, unsigned int flags);
    int pyrunc_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                          const char *to_path, unsigned int flags);
    int pyrunc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                             uint64_t attr_set, uint64_t attr_clr, uint64_t propagation,
                             uint64_t userns_fd);
    long pyrunc_clone_fork(uint64_t flags, int cgroup_fd);
    int pyrunc_setrlimit(int resource, uint64_t soft, uint64_t hard);
    int pyrunc_bpf_prog_load(uint32_t prog_type, const void *insns, uint32_t insn_cnt,
                             const char *license, char *log, uint32_t log_size);
    int pyrunc_bpf_prog_attach(int target_fd, int prog_fd, uint32_t attach_type,
                               uint32_t flags);
    int pyrunc_bpf_prog_detach(int target_fd, int prog_fd, uint32_t attach_type);
    int pyrunc_bpf_prog_query(int target_fd, uint32_t attach_type, uint32_t *ids,
                              uint32_t *cnt);
    int pyrunc_bpf_prog_get_fd_by_id(uint32_t id);
    int inotify_init1(int flags);
    int inotify_add_watch(int fd, const char *pathname, uint32_t mask);

    int pyrunc_fstatfs_type(int fd, uint64_t *f_type);
    long pyrunc_seccomp_filter(unsigned int flags, const void *insns, unsigned int count);

    /* libseccomp.so.2, dlopen'ed on first use (pyrunc_scmp_open) */
    struct pyrunc_scmp_arg { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
    int pyrunc_scmp_open(void);
    const char *pyrunc_scmp_error(void);
    int pyrunc_scmp_version(unsigned int v[3]);
    void *pyrunc_scmp_init(uint32_t def_action);
    void pyrunc_scmp_release(void *ctx);
    int pyrunc_scmp_attr_set(void *ctx, int attr, uint32_t value);
    uint32_t pyrunc_scmp_arch_resolve_name(const char *arch_name);
    int pyrunc_scmp_arch_add(void *ctx, uint32_t arch_token);
    int pyrunc_scmp_syscall_resolve_name(const char *name);
    int pyrunc_scmp_rule_add_array(void *ctx, uint32_t action, int syscall,
                                   unsigned int arg_cnt, const struct pyrunc_scmp_arg *args);
    int pyrunc_scmp_export_bpf(void *ctx, int fd);
    """
)

ffibuilder.set_source(
    "pyrunc.native._lowlevel",
    r"""
    #define _GNU_SOURCE
    #include <sched.h>
    #include <stdint.h>
    #include <unistd.h>
    #include <sys/mount.h>
    #include <sys/personality.h>
    #include <sys/prctl.h>
    #include <errno.h>
    #include <signal.h>
    #include <string.h>
    #include <sys/single_threaded.h>
    #include <sys/syscall.h>
    #include <linux/capability.h>
    #include <linux/bpf.h>
    #include <sys/inotify.h>
    #include <sys/vfs.h>
    #include <stdio.h>
    #include <dlfcn.h>
    #include <linux/filter.h>
    #include <linux/seccomp.h>

    /* Syscalls newer than some libc headers: the numbers every architecture shares
       since Linux 5.x (asm-generic/unistd.h). */
    #ifndef SYS_open_tree
    #define SYS_open_tree 428
    #endif
    #ifndef SYS_move_mount
    #define SYS_move_mount 429
    #endif
    #ifndef SYS_clone3
    #define SYS_clone3 435
    #endif
    #ifndef SYS_openat2
    #define SYS_openat2 437
    #endif
    #ifndef SYS_mount_setattr
    #define SYS_mount_setattr 442
    #endif
    #ifndef CLONE_INTO_CGROUP
    #define CLONE_INTO_CGROUP 0x200000000ULL
    #endif

    int pyrunc_pivot_root(const char *new_root, const char *put_old) {
        return syscall(SYS_pivot_root, new_root, put_old);
    }
    int pyrunc_capget(int pid, uint32_t data[6]) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, pid };
        struct __user_cap_data_struct d[2];
        int r = syscall(SYS_capget, &h, d);
        if (r == 0) {
            data[0] = d[0].effective; data[1] = d[1].effective;
            data[2] = d[0].permitted; data[3] = d[1].permitted;
            data[4] = d[0].inheritable; data[5] = d[1].inheritable;
        }
        return r;
    }
    int pyrunc_capset(int pid, const uint32_t data[6]) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, pid };
        struct __user_cap_data_struct d[2];
        d[0].effective = data[0]; d[1].effective = data[1];
        d[0].permitted = data[2]; d[1].permitted = data[3];
        d[0].inheritable = data[4]; d[1].inheritable = data[5];
        return syscall(SYS_capset, &h, d);
    }
    long pyrunc_keyctl_join(const char *name) {
        /* KEYCTL_JOIN_SESSION_KEYRING = 1 */
        return syscall(SYS_keyctl, 1, name, 0, 0, 0);
    }
    int pyrunc_ioprio_set(int which, int who, int ioprio) {
        return syscall(SYS_ioprio_set, which, who, ioprio);
    }
    long pyrunc_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode) {
        return syscall(SYS_set_mempolicy, mode, nodemask, maxnode);
    }
    struct pyrunc_sched_attr {
        uint32_t size, sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime, sched_deadline, sched_period;
    };
    int pyrunc_sched_setattr(int pid, uint32_t policy, uint64_t flags, int32_t nice,
                             uint32_t priority, uint64_t runtime, uint64_t deadline,
                             uint64_t period) {
        struct pyrunc_sched_attr a = { sizeof(a), policy, flags, nice, priority,
                                       runtime, deadline, period };
        return syscall(SYS_sched_setattr, pid, &a, 0);
    }
    struct pyrunc_open_how { uint64_t flags, mode, resolve; };
    int pyrunc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                       uint64_t resolve) {
        struct pyrunc_open_how how = { flags, mode, resolve };
        return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    }
    int pyrunc_open_tree(int dirfd, const char *path, unsigned int flags) {
        return syscall(SYS_open_tree, dirfd, path, flags);
    }
    int pyrunc_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                          const char *to_path, unsigned int flags) {
        return syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
    }
    struct pyrunc_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
    int pyrunc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                             uint64_t attr_set, uint64_t attr_clr, uint64_t propagation,
                             uint64_t userns_fd) {
        struct pyrunc_mount_attr a = { attr_set, attr_clr, propagation, userns_fd };
        return syscall(SYS_mount_setattr, dirfd, path, flags, &a, sizeof(a));
    }
    int pyrunc_setrlimit(int resource, uint64_t soft, uint64_t hard) {
        uint64_t lim[2] = { soft, hard };  /* struct rlimit64 */
        return syscall(SYS_prlimit64, 0, resource, lim, NULL);
    }
    /* bpf(2), only what cgroup v2 device programs need (runc's ebpf_linux.go). */
    static int pyrunc_bpf(int cmd, union bpf_attr *a) {
        return syscall(SYS_bpf, cmd, a, sizeof(*a));
    }
    int pyrunc_bpf_prog_load(uint32_t prog_type, const void *insns, uint32_t insn_cnt,
                             const char *license, char *log, uint32_t log_size) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.prog_type = prog_type;
        a.insns = (uint64_t)(uintptr_t)insns;
        a.insn_cnt = insn_cnt;
        a.license = (uint64_t)(uintptr_t)license;
        if (log && log_size) {
            a.log_buf = (uint64_t)(uintptr_t)log;
            a.log_size = log_size;
            a.log_level = 1;
        }
        return pyrunc_bpf(BPF_PROG_LOAD, &a);
    }
    int pyrunc_bpf_prog_attach(int target_fd, int prog_fd, uint32_t attach_type,
                               uint32_t flags) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.target_fd = target_fd;
        a.attach_bpf_fd = prog_fd;
        a.attach_type = attach_type;
        a.attach_flags = flags;
        return pyrunc_bpf(BPF_PROG_ATTACH, &a);
    }
    int pyrunc_bpf_prog_detach(int target_fd, int prog_fd, uint32_t attach_type) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.target_fd = target_fd;
        a.attach_bpf_fd = prog_fd;
        a.attach_type = attach_type;
        return pyrunc_bpf(BPF_PROG_DETACH, &a);
    }
    int pyrunc_bpf_prog_query(int target_fd, uint32_t attach_type, uint32_t *ids,
                              uint32_t *cnt) {
        union bpf_attr a;
        int r;
        memset(&a, 0, sizeof(a));
        a.query.target_fd = target_fd;
        a.query.attach_type = attach_type;
        a.query.prog_ids = (uint64_t)(uintptr_t)ids;
        a.query.prog_cnt = *cnt;
        r = pyrunc_bpf(BPF_PROG_QUERY, &a);
        *cnt = a.query.prog_cnt;  /* also on ENOSPC: how many there are */
        return r;
    }
    int pyrunc_bpf_prog_get_fd_by_id(uint32_t id) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.prog_id = id;
        return pyrunc_bpf(BPF_PROG_GET_FD_BY_ID, &a);
    }
    /* os.fork() as clone3: the child starts in new namespaces (flags) and, with
       cgroup_fd >= 0, in that cgroup v2 directory (CLONE_INTO_CGROUP: no migration,
       so no cgroup_threadgroup_rwsem write lock and no RCU grace period, ~10 ms, as a
       cgroup.procs write pays). As os.fork, the interpreter's fork hooks run with the
       GIL held (cffi calls release it). Only in a single-threaded process (glibc's
       fork handlers, e.g. malloc's locks, are skipped): else EAGAIN. */
    struct pyrunc_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
                 tls, set_tid, set_tid_size, cgroup;
    };
    long pyrunc_clone_fork(uint64_t flags, int cgroup_fd) {
        struct pyrunc_clone_args a;
        long pid;
        int err;
        PyGILState_STATE st;
        if (!__libc_single_threaded) {
            errno = EAGAIN;
            return -1;
        }
        memset(&a, 0, sizeof(a));
        a.flags = flags;
        if (cgroup_fd >= 0) {
            a.flags |= CLONE_INTO_CGROUP;
            a.cgroup = (uint64_t)cgroup_fd;
        }
        a.exit_signal = SIGCHLD;
        st = PyGILState_Ensure();
        PyOS_BeforeFork();
        pid = syscall(SYS_clone3, &a, sizeof(a));
        err = errno;
        if (pid == 0)
            PyOS_AfterFork_Child();
        else
            PyOS_AfterFork_Parent();
        PyGILState_Release(st);
        errno = err;
        return pid;
    }

    int pyrunc_fstatfs_type(int fd, uint64_t *f_type) {
        struct statfs s;
        int r = fstatfs(fd, &s);
        if (r == 0)
            *f_type = (uint64_t)s.f_type & 0xFFFFFFFFULL;
        return r;
    }
    /* seccomp(SECCOMP_SET_MODE_FILTER): count classic BPF instructions at insns; with
       insns NULL, only the flags are checked (the kernel fails with EFAULT past them). */
    long pyrunc_seccomp_filter(unsigned int flags, const void *insns, unsigned int count) {
        struct sock_fprog prog = { (unsigned short)count, (struct sock_filter *)insns };
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, insns ? &prog : NULL);
    }

    /* libseccomp through dlopen: loaded only for a config with linux.seccomp (linking
       it would load it, and its relocations, at every start), and no headers or -dev
       package needed to build. The declarations follow libseccomp 2.5's <seccomp.h>
       (enums are ints; struct pyrunc_scmp_arg is struct scmp_arg_cmp). */
    struct pyrunc_scmp_arg { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
    struct pyrunc_scmp_ver { unsigned int major, minor, micro; };
    static struct {
        void *handle;
        const struct pyrunc_scmp_ver *(*version)(void);  /* libseccomp >= 2.3 */
        void *(*init)(uint32_t);
        void (*release)(void *);
        int (*attr_set)(void *, int, uint32_t);
        uint32_t (*arch_resolve_name)(const char *);
        int (*arch_add)(void *, uint32_t);
        int (*syscall_resolve_name)(const char *);
        int (*rule_add_array)(void *, uint32_t, int, unsigned int,
                              const struct pyrunc_scmp_arg *);
        int (*export_bpf)(void *, int);
    } scmp;
    static char scmp_err[512];
    int pyrunc_scmp_open(void) {
        void *h;
        if (scmp.handle)
            return 0;
        h = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(scmp_err, sizeof(scmp_err), "%s", dlerror());
            return -1;
        }
    #define PYRUNC_SYM(field, name) \
        if (!(*(void **)&scmp.field = dlsym(h, name))) { \
            snprintf(scmp_err, sizeof(scmp_err), "libseccomp.so.2 has no %s", name); \
            dlclose(h); \
            return -1; \
        }
        PYRUNC_SYM(init, "seccomp_init")
        PYRUNC_SYM(release, "seccomp_release")
        PYRUNC_SYM(attr_set, "seccomp_attr_set")
        PYRUNC_SYM(arch_resolve_name, "seccomp_arch_resolve_name")
        PYRUNC_SYM(arch_add, "seccomp_arch_add")
        PYRUNC_SYM(syscall_resolve_name, "seccomp_syscall_resolve_name")
        PYRUNC_SYM(rule_add_array, "seccomp_rule_add_array")
        PYRUNC_SYM(export_bpf, "seccomp_export_bpf")
    #undef PYRUNC_SYM
        *(void **)&scmp.version = dlsym(h, "seccomp_version");
        scmp.handle = h;
        return 0;
    }
    const char *pyrunc_scmp_error(void) { return scmp_err; }
    int pyrunc_scmp_version(unsigned int v[3]) {
        const struct pyrunc_scmp_ver *p = scmp.version ? scmp.version() : NULL;
        if (!p)
            return -1;
        v[0] = p->major; v[1] = p->minor; v[2] = p->micro;
        return 0;
    }
    void *pyrunc_scmp_init(uint32_t def_action) { return scmp.init(def_action); }
    void pyrunc_scmp_release(void *ctx) { scmp.release(ctx); }
    int pyrunc_scmp_attr_set(void *ctx, int attr, uint32_t value) {
        return scmp.attr_set(ctx, attr, value);
    }
    uint32_t pyrunc_scmp_arch_resolve_name(const char *name) {
        return scmp.arch_resolve_name(name);
    }
    int pyrunc_scmp_arch_add(void *ctx, uint32_t token) { return scmp.arch_add(ctx, token); }
    int pyrunc_scmp_syscall_resolve_name(const char *name) {
        return scmp.syscall_resolve_name(name);
    }
    int pyrunc_scmp_rule_add_array(void *ctx, uint32_t action, int syscall,
                                   unsigned int arg_cnt, const struct pyrunc_scmp_arg *args) {
        return scmp.rule_add_array(ctx, action, syscall, arg_cnt, args);
    }
    int pyrunc_scmp_export_bpf(void *ctx, int fd) { return scmp.export_bpf(ctx, fd); }
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
