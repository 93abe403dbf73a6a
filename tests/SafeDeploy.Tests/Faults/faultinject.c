/* faultinject: runs a program under ptrace with a seccomp filter and fails exactly one chosen I/O system call
 * (counted across every thread and child process), for SafeDeploy's fault-sweep tests.
 *
 *   faultinject --prefix DIR [--errno N] [--log FILE] -- PROGRAM ARGS...
 *
 * Only calls on paths under DIR count (fds are resolved through /proc/<tid>/fd, relative names through the dirfd).
 * The program chooses the fault point itself by touching a marker path under DIR (any stat/access/open of it):
 *   DIR/.../.faultpoint-N         reset the count; fail the N-th counted call after this marker (0: count only)
 *   DIR/.../.faultpoint-N-sticky  the same, and every counted call after the N-th fails too (a disk that stays bad)
 * A marker call itself is neither counted nor failed. Each counted call is logged as
 *   "<point> <index> <syscall> <path> <0|1 injected>"  and each marker as "# marker <point> <sticky>".
 * The exit status is the program's. Built by the tests with gcc; x86-64 only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind { FD, PATH, DIRPATH, PATH2, DIRPATH2, MARKONLY_PATH, MARKONLY_DIRPATH };
struct sc { long nr; const char *name; enum kind kind; int a; int b; };
/* a: index of the fd / dirfd argument, b: index of the path argument (PATH2/DIRPATH2: second path after it) */
static const struct sc table[] = {
    {SYS_read, "read", FD, 0, 0}, {SYS_pread64, "pread64", FD, 0, 0}, {SYS_readv, "readv", FD, 0, 0},
    {SYS_write, "write", FD, 0, 0}, {SYS_pwrite64, "pwrite64", FD, 0, 0}, {SYS_writev, "writev", FD, 0, 0},
    {SYS_pwritev, "pwritev", FD, 0, 0},
    {SYS_fsync, "fsync", FD, 0, 0}, {SYS_fdatasync, "fdatasync", FD, 0, 0}, {SYS_ftruncate, "ftruncate", FD, 0, 0},
    {SYS_fallocate, "fallocate", FD, 0, 0}, {SYS_fchmod, "fchmod", FD, 0, 0}, {SYS_fchown, "fchown", FD, 0, 0},
    {SYS_open, "open", PATH, 0, 0}, {SYS_creat, "creat", PATH, 0, 0}, {SYS_openat, "openat", DIRPATH, 0, 1},
    {SYS_openat2, "openat2", DIRPATH, 0, 1},
    {SYS_mkdir, "mkdir", PATH, 0, 0}, {SYS_mkdirat, "mkdirat", DIRPATH, 0, 1}, {SYS_rmdir, "rmdir", PATH, 0, 0},
    {SYS_unlink, "unlink", PATH, 0, 0}, {SYS_unlinkat, "unlinkat", DIRPATH, 0, 1},
    {SYS_rename, "rename", PATH2, 0, 1}, {SYS_renameat, "renameat", DIRPATH2, 0, 1}, {SYS_renameat2, "renameat2", DIRPATH2, 0, 1},
    {SYS_link, "link", PATH2, 0, 1}, {SYS_linkat, "linkat", DIRPATH2, 0, 1},
    {SYS_symlink, "symlink", PATH, 1, 1}, {SYS_symlinkat, "symlinkat", DIRPATH, 1, 2},
    {SYS_chmod, "chmod", PATH, 0, 0}, {SYS_fchmodat, "fchmodat", DIRPATH, 0, 1}, {SYS_chown, "chown", PATH, 0, 0},
    {SYS_lchown, "lchown", PATH, 0, 0}, {SYS_fchownat, "fchownat", DIRPATH, 0, 1}, {SYS_truncate, "truncate", PATH, 0, 0},
    /* marker-only: never counted or failed */
    {SYS_stat, "stat", MARKONLY_PATH, 0, 0}, {SYS_lstat, "lstat", MARKONLY_PATH, 0, 0}, {SYS_access, "access", MARKONLY_PATH, 0, 0},
    {SYS_newfstatat, "newfstatat", MARKONLY_DIRPATH, 0, 1}, {SYS_statx, "statx", MARKONLY_DIRPATH, 0, 1},
    {SYS_faccessat, "faccessat", MARKONLY_DIRPATH, 0, 1}, {SYS_faccessat2, "faccessat2", MARKONLY_DIRPATH, 0, 1},
};
#define NTABLE (sizeof table / sizeof table[0])

static char prefix[4096];
static size_t prefixlen;
static int inject_errno = EIO;
static FILE *logf;
static long point = -1, counted = 0;
static int sticky = 0;

static unsigned long arg(const struct user_regs_struct *r, int i) {
    switch (i) { case 0: return r->rdi; case 1: return r->rsi; case 2: return r->rdx; case 3: return r->r10; case 4: return r->r8; default: return r->r9; }
}

static int read_string(pid_t tid, unsigned long addr, char *buf, size_t size) {
    struct iovec local = {buf, size - 1}, remote = {(void *)addr, size - 1};
    ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n <= 0) { /* the string may end near a page boundary: read byte pages one by one */
        size_t got = 0;
        while (got < size - 1) {
            size_t chunk = 4096 - ((addr + got) % 4096);
            if (chunk > size - 1 - got) chunk = size - 1 - got;
            struct iovec l = {buf + got, chunk}, r = {(void *)(addr + got), chunk};
            ssize_t m = process_vm_readv(tid, &l, 1, &r, 1, 0);
            if (m <= 0) break;
            got += m;
            if (memchr(buf + got - m, 0, m)) break;
        }
        if (got == 0) return -1;
        n = got;
    }
    buf[n] = 0;
    return 0;
}

static int fd_path(pid_t tid, long fd, char *out, size_t size) {
    char link[64];
    if (fd == AT_FDCWD) snprintf(link, sizeof link, "/proc/%d/cwd", tid);
    else snprintf(link, sizeof link, "/proc/%d/fd/%ld", tid, fd);
    ssize_t n = readlink(link, out, size - 1);
    if (n < 0) return -1;
    out[n] = 0;
    return 0;
}

static int full_path(pid_t tid, long dirfd, unsigned long addr, char *out, size_t size) {
    char name[4096];
    if (read_string(tid, addr, name, sizeof name) != 0) return -1;
    if (name[0] == '/') { snprintf(out, size, "%s", name); return 0; }
    char dir[4096];
    if (fd_path(tid, dirfd, dir, sizeof dir) != 0) return -1;
    if (name[0] == 0) snprintf(out, size, "%s", dir);
    else snprintf(out, size, "%s/%s", dir, name);
    return 0;
}

static int under_prefix(const char *p) {
    return strncmp(p, prefix, prefixlen) == 0 && (p[prefixlen] == '/' || p[prefixlen] == 0);
}

/* A marker sets the next fault point; returns 1 if p is one. */
static int marker(const char *p) {
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    if (strncmp(base, ".faultpoint-", 12) != 0) return 0;
    char *end;
    long n = strtol(base + 12, &end, 10);
    point = n;
    counted = 0;
    sticky = strcmp(end, "-sticky") == 0;
    fprintf(logf, "# marker %ld %d\n", point, sticky);
    fflush(logf);
    return 1;
}

static void on_seccomp_stop(pid_t tid) {
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, tid, 0, &r) != 0) return;
    const struct sc *s = NULL;
    for (size_t i = 0; i < NTABLE; i++) if (table[i].nr == (long)r.orig_rax) { s = &table[i]; break; }
    if (!s) return;
    char p[8192] = "", p2[8192] = "";
    int ok = -1;
    switch (s->kind) {
    case FD: ok = fd_path(tid, (long)(int)arg(&r, s->a), p, sizeof p); break;
    case PATH: case MARKONLY_PATH: ok = full_path(tid, AT_FDCWD, arg(&r, s->b), p, sizeof p); break;
    case DIRPATH: case MARKONLY_DIRPATH: ok = full_path(tid, (long)(int)arg(&r, s->a), arg(&r, s->b), p, sizeof p); break;
    case PATH2: ok = full_path(tid, AT_FDCWD, arg(&r, 0), p, sizeof p); if (ok == 0) full_path(tid, AT_FDCWD, arg(&r, 1), p2, sizeof p2); break;
    case DIRPATH2:
        ok = full_path(tid, (long)(int)arg(&r, 0), arg(&r, 1), p, sizeof p);
        if (ok == 0) full_path(tid, (long)(int)arg(&r, 2), arg(&r, 3), p2, sizeof p2);
        break;
    }
    if (ok != 0) return;
    int in1 = under_prefix(p), in2 = p2[0] && under_prefix(p2);
    if (!in1 && !in2) return;
    if (marker(in1 ? p : p2)) return;
    if (s->kind == MARKONLY_PATH || s->kind == MARKONLY_DIRPATH || point < 0) return;
    counted++;
    int inject = point > 0 && (counted == point || (sticky && counted > point));
    fprintf(logf, "%ld %ld %s %s%s%s %d\n", point, counted, s->name, in1 ? p : p2, in1 && in2 ? " -> " : "", in1 && in2 ? p2 : "", inject);
    fflush(logf);
    if (!inject) return;
    r.orig_rax = -1;          /* skip the call ... */
    r.rax = -inject_errno;    /* ... and make it return this error */
    ptrace(PTRACE_SETREGS, tid, 0, &r);
}

static int install_filter(void) {
    struct sock_filter f[NTABLE + 5];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < NTABLE; i++) {
        /* jump to the TRACE return (last) when equal */
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)table[i].nr, (unsigned char)(NTABLE - i), 0);
        n++;
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_filter trace = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    struct sock_filter all[NTABLE + 6];
    memcpy(all, f, n * sizeof f[0]);
    all[n++] = trace;
    struct sock_fprog prog = {(unsigned short)n, all};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv) {
    const char *logpath = "/dev/stderr";
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--prefix") && i + 1 < argc) { snprintf(prefix, sizeof prefix, "%s", argv[++i]); }
        else if (!strcmp(argv[i], "--errno") && i + 1 < argc) inject_errno = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--log") && i + 1 < argc) logpath = argv[++i];
        else if (!strcmp(argv[i], "--")) { i++; break; }
        else { fprintf(stderr, "faultinject: unknown argument %s\n", argv[i]); return 64; }
    }
    prefixlen = strlen(prefix);
    while (prefixlen > 1 && prefix[prefixlen - 1] == '/') prefix[--prefixlen] = 0;
    if (i >= argc || prefixlen == 0) { fprintf(stderr, "usage: faultinject --prefix DIR [--errno N] [--log FILE] -- PROGRAM ARGS...\n"); return 64; }
    logf = fopen(logpath, "a");
    if (!logf) { perror("faultinject: log"); return 70; }

    pid_t child = fork();
    if (child < 0) { perror("fork"); return 70; }
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        if (install_filter() != 0) { perror("faultinject: seccomp"); _exit(70); }
        execvp(argv[i], argv + i);
        perror("faultinject: exec");
        _exit(127);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) { fprintf(stderr, "faultinject: child did not stop\n"); return 70; }
    ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
           PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, child, 0, 0);
    int exit_code = 70;
    for (;;) {
        pid_t tid = waitpid(-1, &status, __WALL);
        if (tid < 0) { if (errno == EINTR) continue; break; }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (tid == child) exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int sig = WSTOPSIG(status), event = (unsigned)status >> 16;
        if (sig == SIGTRAP && event == PTRACE_EVENT_SECCOMP) { on_seccomp_stop(tid); ptrace(PTRACE_CONT, tid, 0, 0); continue; }
        if (sig == SIGTRAP && event != 0) { ptrace(PTRACE_CONT, tid, 0, 0); continue; }
        if (sig == SIGSTOP && event == 0) { ptrace(PTRACE_CONT, tid, 0, 0); continue; } /* new threads start stopped */
        if (event == PTRACE_EVENT_STOP) { ptrace(PTRACE_CONT, tid, 0, 0); continue; }
        ptrace(PTRACE_CONT, tid, 0, (void *)(long)sig);  /* deliver the program's own signals */
    }
    fprintf(logf, "# exit %d counted %ld\n", exit_code, counted);
    fclose(logf);
    return exit_code;
}
