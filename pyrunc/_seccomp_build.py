"""cffi out-of-line ABI-mode build of pyrunc._seccomp (generated at install time).

ABI mode: no C compiler and no libseccomp headers are needed, and nothing is parsed at
run time. pyrunc.seccomp opens libseccomp.so.2 with ffi.dlopen() only when a config
has linux.seccomp; the few libc calls (the raw seccomp(2) syscall, fstatfs) come from
ffi.dlopen(None).

The declarations follow libseccomp 2.5's <seccomp.h> (enums are ints here) and the
kernel's <linux/filter.h>.
"""
from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    /* libseccomp.so.2 */
    typedef void *scmp_filter_ctx;
    struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };
    struct scmp_arg_cmp {
        unsigned int arg;   /* argument number, 0-5 */
        int op;             /* enum scmp_compare */
        uint64_t datum_a;
        uint64_t datum_b;
    };
    const struct scmp_version *seccomp_version(void);
    unsigned int seccomp_api_get(void);
    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);
    int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);
    uint32_t seccomp_arch_resolve_name(const char *arch_name);
    uint32_t seccomp_arch_native(void);
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
    int seccomp_syscall_resolve_name(const char *name);
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);

    /* libc */
    struct sock_filter { uint16_t code; uint8_t jt; uint8_t jf; uint32_t k; };
    struct sock_fprog { unsigned short len; struct sock_filter *filter; };
    long syscall(long number, ...);
    /* only f_type (the first member of struct statfs) is read; the rest is room */
    struct pyrunc_statfs { long f_type; long rest[31]; };
    int fstatfs(int fd, struct pyrunc_statfs *buf);
    """
)

ffibuilder.set_source("pyrunc._seccomp", None)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
