/*
 * The pyrunc command: runs `python -P -c "from pyrunc.cli import main; ..." ARGS`.
 *
 * Why C: a runtime process that enters a container (create's and run's init until it
 * execs the container's process, exec's helpers) is the Python interpreter, its
 * /proc/PID/exe. A container holding CAP_SYS_PTRACE passes the ptrace checks on it
 * (non-dumpable is no bar to that capability) and could open the host's interpreter
 * through /proc/PID/exe and rewrite it once it is no longer running (CVE-2019-5736).
 * So for the commands that enter a container, the interpreter is executed from a
 * detached read-only overlayfs whose only layers are its own directory and an unrelated
 * one (no upper layer: writes are impossible, and, unlike a read-only bind mount, no
 * clone of the mount can be made writable), as runc seals its own binary
 * (libcontainer/dmz/overlayfs_linux.go). Where overlayfs cannot be mounted (rootless,
 * no overlayfs), a sealed memfd copy of the interpreter is executed instead. The other
 * commands exec the interpreter as it is.
 *
 * The interpreter is the installation's: the one the #! line of pyrunc-py names (the
 * installer writes it), beside this binary (setup.py).
 *
 * Built without libc on x86_64 (raw syscalls, own _start): the C library's start-up
 * costs ~0.5 ms per command on the machines measured, ten times the rest of this
 * program. Elsewhere, or if that build fails, with libc (-DPYRUNC_LIBC).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/limits.h>
#include <sys/syscall.h>

#if !defined(PYRUNC_LIBC) && !defined(__x86_64__)
#error "no raw syscalls for this architecture: build with -DPYRUNC_LIBC"
#endif

/* <linux/mount.h>, <linux/memfd.h>, <fcntl.h> values absent from older headers */
#define P_FSOPEN_CLOEXEC 0x1
#define P_FSCONFIG_SET_STRING 1
#define P_FSCONFIG_CMD_CREATE 6
#define P_FSMOUNT_CLOEXEC 0x1
#define P_MOUNT_ATTR_RDONLY 0x1
#define P_MOUNT_ATTR_NOSUID 0x2
#define P_MOUNT_ATTR_NODEV 0x4
#define P_MFD_CLOEXEC 0x1
#define P_MFD_ALLOW_SEALING 0x2
#define P_F_ADD_SEALS 1033
#define P_SEALS 0xf /* F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE */
#define P_AT_EMPTY_PATH 0x1000

#ifdef PYRUNC_LIBC
#include <errno.h>
#include <unistd.h>
static long sys(long n, long a, long b, long c, long d, long e)
{
    long r = syscall(n, a, b, c, d, e);
    return r < 0 ? -errno : r;
}
#else
static long sys(long n, long a, long b, long c, long d, long e)
{
    long r;
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return r; /* -errno on failure */
}
#endif

#define SYS2(n, a, b) sys(n, (long)(a), (long)(b), 0, 0, 0)
#define SYS3(n, a, b, c) sys(n, (long)(a), (long)(b), (long)(c), 0, 0)
#define SYS5(n, a, b, c, d, e) sys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))

static long sys_open(const char *path, int flags) { return SYS5(SYS_openat, AT_FDCWD, path, flags, 0, 0); }
static void sys_close(long fd) { SYS2(SYS_close, fd, 0); }

static int same(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static int starts(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

/* appends to a fixed buffer, truncating */
struct buf {
    char *p;
    unsigned long n, size;
};

static void put(struct buf *b, const char *s)
{
    while (*s && b->n + 1 < b->size)
        b->p[b->n++] = *s++;
    b->p[b->n] = 0;
}

static void put_num(struct buf *b, long v)
{
    char tmp[24];
    int i = sizeof tmp - 1;
    tmp[i] = 0;
    do
        tmp[--i] = '0' + v % 10;
    while ((v /= 10) && i > 0);
    put(b, tmp + i);
}

static char why_text[2 * PATH_MAX];
static struct buf why = {why_text, 0, sizeof why_text};

/* what went wrong: "what: errno N" (no strerror without libc; the number is enough) */
static void failed(const char *what, const char *path, long err)
{
    if (why.n)
        put(&why, "; ");
    put(&why, what);
    if (path) {
        put(&why, " ");
        put(&why, path);
    }
    if (err < 0) {
        put(&why, ": errno ");
        put_num(&why, -err);
    }
}

static int die(int code)
{
    static char line[sizeof why_text + 16];
    struct buf b = {line, 0, sizeof line};
    put(&b, "pyrunc: ");
    put(&b, why_text);
    put(&b, "\n");
    SYS3(SYS_write, 2, line, b.n);
    return code;
}

static const char *const ENTERING[] = {"create", "run", "exec", 0};
/* A second layer is needed for a lower-only (read-only) overlay; it must not overlap
 * the interpreter's directory. Only a reference is held, nothing of it is used. */
static const char *const SECOND_LAYER[] = {"/run", "/dev", "/tmp", "/var", 0};

static int enters_container(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        for (const char *const *c = ENTERING; *c; c++)
            if (same(argv[i], *c))
                return 1;
    return 0;
}

static int overlaps(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (*a == 0 || *a == '/') && (*b == 0 || *b == '/');
}

/* The interpreter named by pyrunc-py beside this binary: "#!/path/python" or, for long
 * paths, pip's two-line form ("#!/bin/sh", then "'''exec' /path/python ..."), with the
 * path in double quotes when it has spaces. */
static const char *interpreter(void)
{
    static char path[PATH_MAX + 16], text[2 * PATH_MAX];
    long n = SYS5(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", path, PATH_MAX, 0);
    char *slash = 0;
    if (n > 0) {
        path[n] = 0;
        for (char *p = path; *p; p++)
            if (*p == '/')
                slash = p;
    }
    if (!slash) {
        failed("readlink", "/proc/self/exe", n);
        return 0;
    }
    struct buf b = {slash + 1, 0, sizeof path - (slash + 1 - path)};
    put(&b, "pyrunc-py");
    long fd = sys_open(path, O_RDONLY | O_CLOEXEC);
    n = fd < 0 ? fd : SYS3(SYS_read, fd, text, sizeof text - 1);
    if (fd >= 0)
        sys_close(fd);
    if (n < 3 || text[0] != '#' || text[1] != '!') {
        failed(n < 0 ? "reading the interpreter from" : "no #! line in", path, n);
        return 0;
    }
    text[n] = 0;
    char *p = text + 2, *end;
    if (starts(p, "/bin/sh\n")) {
        for (p += 8; *p && !starts(p, "'''exec' "); p++)
            ;
        if (*p)
            p += 9;
    }
    char stop = ' ';
    if (*p == '"')
        stop = '"', p++;
    for (end = p; *end && *end != stop && *end != '\n' && *end != '\t'; end++)
        ;
    if (end == p || *p != '/') {
        failed("no interpreter in the #! line of", path, 0);
        return 0;
    }
    *end = 0;
    return p;
}

/* An O_PATH descriptor of the interpreter in a detached read-only overlayfs, or < 0. */
static long overlay_copy(const char *dir, const char *name)
{
    static char lower[3 * PATH_MAX];
    long err = 0;
    for (const char *const *second = SECOND_LAYER; *second; second++) {
        if (overlaps(dir, *second))
            continue;
        long ctx = SYS2(SYS_fsopen, "overlay", P_FSOPEN_CLOEXEC);
        if (ctx < 0) {
            failed("fsopen overlay", 0, ctx);
            return ctx;
        }
        struct buf b = {lower, 0, sizeof lower};
        for (const char *c = dir; *c; c++) { /* lowerdir syntax: ':' separates, '\' escapes */
            char one[3] = {'\\', *c, 0};
            put(&b, (*c == ':' || *c == '\\') ? one : one + 1);
        }
        put(&b, ":");
        put(&b, *second);
        long mnt = err = SYS5(SYS_fsconfig, ctx, P_FSCONFIG_SET_STRING, "lowerdir", lower, 0);
        if (err == 0) {
            /* xino would only log warnings when the layers are on different filesystems */
            SYS5(SYS_fsconfig, ctx, P_FSCONFIG_SET_STRING, "xino", "off", 0);
            mnt = err = SYS5(SYS_fsconfig, ctx, P_FSCONFIG_CMD_CREATE, 0, 0, 0);
            if (err == 0)
                mnt = err = SYS3(SYS_fsmount, ctx, P_FSMOUNT_CLOEXEC,
                                 P_MOUNT_ATTR_RDONLY | P_MOUNT_ATTR_NOSUID | P_MOUNT_ATTR_NODEV);
        }
        sys_close(ctx);
        if (mnt >= 0) {
            long fd = err = SYS5(SYS_openat, mnt, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, 0);
            sys_close(mnt); /* the mount lives on through fd, detached from every namespace */
            if (fd >= 0)
                return fd;
        }
    }
    failed("overlayfs of", dir, err);
    return err < 0 ? err : -1;
}

/* A sealed (unwritable) memfd copy of the interpreter, or < 0. */
static long memfd_copy(long in, const char *real)
{
    long fd = SYS2(SYS_memfd_create, "pyrunc-python", P_MFD_CLOEXEC | P_MFD_ALLOW_SEALING);
    if (fd < 0) {
        failed("memfd_create", 0, fd);
        return fd;
    }
    long n;
    while ((n = SYS5(SYS_sendfile, fd, in, 0, 1 << 30, 0)) > 0)
        ;
    if (n == 0)
        n = SYS3(SYS_fcntl, fd, P_F_ADD_SEALS, P_SEALS);
    if (n < 0) {
        failed("copying to a sealed memfd", real, n);
        sys_close(fd);
        return n;
    }
    return fd;
}

static int launch(int argc, char **argv, char **envp)
{
    const char *python = interpreter();
    if (!python)
        return die(1);
    static char *args[4096];
    if (argc + 4 > (int)(sizeof args / sizeof *args)) {
        failed("too many arguments", 0, 0);
        return die(1);
    }
    args[0] = (char *)python; /* Python finds its venv (pyvenv.cfg) from argv[0] */
    args[1] = "-P";           /* neither the cwd (a bundle) nor a script dir on sys.path */
    args[2] = "-c";
    args[3] = "from pyrunc.cli import main; main(fast_exit=True)";
    for (int i = 1; i < argc; i++)
        args[i + 3] = argv[i];
    args[argc + 3] = 0;

    if (!enters_container(argc, argv)) {
        long err = SYS3(SYS_execve, python, args, envp);
        failed("executing", python, err);
        return die(127);
    }
    /* The real file (symlinks resolved) through its descriptor's /proc link. */
    static char real[PATH_MAX + 1];
    long in = sys_open(python, O_RDONLY | O_CLOEXEC), n = in;
    if (in >= 0) {
        char link[32] = "/proc/self/fd/";
        struct buf b = {link, 14, sizeof link};
        put_num(&b, in);
        n = SYS5(SYS_readlinkat, AT_FDCWD, link, real, PATH_MAX, 0);
    }
    if (n <= 0 || real[0] != '/') {
        failed("resolving the interpreter", python, n < 0 ? n : -2);
        return die(1);
    }
    real[n] = 0;
    char *slash = real;
    for (char *p = real; *p; p++)
        if (*p == '/')
            slash = p;
    *slash = 0;
    long fd = overlay_copy(slash == real ? "/" : real, slash + 1);
    *slash = '/';
    if (fd < 0)
        fd = memfd_copy(in, real);
    sys_close(in);
    if (fd < 0) {
        put(&why, " (cannot run a sealed copy of the interpreter)");
        return die(1);
    }
    long err = SYS5(SYS_execveat, fd, "", args, envp, P_AT_EMPTY_PATH);
    failed("executing the sealed interpreter", real, err);
    return die(1);
}

#ifdef PYRUNC_LIBC
int main(int argc, char **argv, char **envp)
{
    return launch(argc, argv, envp);
}
#else
/* Without libc the compiler may still emit calls to these. */
void *memset(void *d, int c, unsigned long n)
{
    for (unsigned char *p = d; n--;)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
    unsigned char *o = d;
    for (const unsigned char *i = s; n--;)
        *o++ = *i++;
    return d;
}

__attribute__((noreturn, used)) void pyrunc_start(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    sys(SYS_exit_group, launch(argc, argv, argv + argc + 1), 0, 0, 0, 0);
    for (;;)
        ;
}

__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n"
        " and $-16, %rsp\n call pyrunc_start\n hlt\n");
#endif
