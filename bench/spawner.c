/* A tiny spawn-and-wait4 server for bench/run.py (compiled into the work dir at run time).
 *
 * Why: ru_maxrss of a process counts the memory of the process that exec'd it (at
 * execve the kernel folds the old mm's high-water mark into the new image's maxrss), so
 * a runtime spawned straight from the Python bench (~18 MiB) never shows less than the
 * bench itself. Spawned from this ~1 MiB process, wait4's ru_maxrss is the runtime's own.
 * It also times spawn-to-reap with CLOCK_MONOTONIC, next to the fork and the wait4.
 *
 * Protocol, one request a line on stdin, fields separated by tabs:
 *   S <stdout path> <stderr path> <argv0> <argv1> ...   -> "<pid> <t_spawn_ns>"
 *   R <stdout path> <stderr path> <argv0> <argv1> ...   -> "<pid> <t_spawn_ns>", then the
 *                                                          W reply for that pid
 *   W <pid>                                             -> "<pid> <exit> <t_reap_ns>
 *                                                          <utime_us> <stime_us> <maxrss_kb>"
 * <exit> is the exit code, or -signal. Children get stdin /dev/null, the given files as
 * stdout/stderr (created/truncated), default signal dispositions and an empty mask, and
 * this process's environment. EOF on stdin: exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXARGS 256

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_to(const char *path, int fd, int flags) {
    int f = open(path, flags | O_CLOEXEC, 0600);
    if (f < 0)
        return -1;
    if (dup2(f, fd) < 0)
        return -1;
    close(f);
    return 0;
}

static pid_t spawn(char **fields, int n, long long *t) {
    char *argv[MAXARGS + 1];
    int i, argc = 0;
    for (i = 2; i < n && argc < MAXARGS; i++)
        argv[argc++] = fields[i];
    argv[argc] = NULL;
    fflush(stdout);
    *t = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (open_to("/dev/null", 0, O_RDONLY) < 0 ||
            open_to(fields[0], 1, O_WRONLY | O_CREAT | O_TRUNC) < 0 ||
            open_to(fields[1], 2, O_WRONLY | O_CREAT | O_TRUNC) < 0)
            _exit(126);
        execv(argv[0], argv);
        dprintf(2, "spawner: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static void reply_wait(pid_t pid) {
    int status;
    struct rusage ru;
    pid_t r;
    do {
        r = wait4(pid, &status, 0, &ru);
    } while (r < 0 && errno == EINTR);
    long long t = now_ns();
    if (r < 0) {
        printf("%d -255 %lld 0 0 0\n", (int)pid, t);
    } else {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        printf("%d %d %lld %lld %lld %ld\n", (int)pid, code, t,
               (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
               (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, ru.ru_maxrss);
    }
    fflush(stdout);
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int s;
    for (s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    /* Ctrl-C on the terminal stops the bench, not the runtime command in flight: the
     * bench's cleanup deletes whatever it made. */
    setpgid(0, 0);
    while ((len = getline(&line, &cap, stdin)) > 0) {
        char *fields[MAXARGS + 4];
        int n = 0;
        char *p, *save = NULL;
        if (line[len - 1] == '\n')
            line[len - 1] = 0;
        for (p = strtok_r(line + 2, "\t", &save); p && n < MAXARGS + 3; p = strtok_r(NULL, "\t", &save))
            fields[n++] = p;
        if ((line[0] == 'S' || line[0] == 'R') && n >= 3) {
            long long t;
            pid_t pid = spawn(fields, n, &t);
            printf("%d %lld\n", (int)pid, t);
            fflush(stdout);
            if (line[0] == 'R' && pid > 0)
                reply_wait(pid);
        } else if (line[0] == 'W' && n == 1) {
            reply_wait((pid_t)atoi(fields[0]));
        } else {
            printf("-1 bad request\n");
            fflush(stdout);
        }
    }
    return 0;
}
