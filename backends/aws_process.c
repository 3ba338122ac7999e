/* aws_process: credential_process commands (aws_process.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np, pipe2 */
#endif
#include "aws_process.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define AWS_PROCESS_MAX_OUT 65536
#define AWS_PROCESS_MAX_ERR 1024

extern char **environ;

static int aws_process_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int aws_process_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

char **aws_process_split(const char *command, char *err, size_t errlen)
{
    /* At most one word per two bytes, plus the NULL; the words are copied
     * after the pointer array (they only ever shrink). */
    size_t n = strlen(command), max_words = n / 2 + 2;
    char **argv = malloc(max_words * sizeof(char *) + n + 1);
    if (argv == NULL) {
        aws_process_fail(err, errlen, "out of memory");
        return NULL;
    }
    char *o = (char *)(argv + max_words);
    size_t words = 0;
    for (const char *p = command;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        argv[words++] = o;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            if (*p != '"') {
                *o++ = *p++;
                continue;
            }
            const char *close = strchr(p + 1, '"');
            if (close == NULL) {
                free(argv);
                aws_process_fail(err, errlen, "credential_process: unterminated double quote");
                return NULL;
            }
            memcpy(o, p + 1, (size_t)(close - p - 1));
            o += close - p - 1;
            p = close + 1;
        }
        *o++ = '\0';
    }
    argv[words] = NULL;
    if (words == 0) {
        free(argv);
        aws_process_fail(err, errlen, "credential_process: empty command");
        return NULL;
    }
    return argv;
}

/* Reads both pipes until both close or the deadline passes: 0, -1 on
 * timeout, -2 when stdout exceeds its limit. stderr keeps its first bytes. */
static int aws_process_collect(int out_fd, int err_fd, long timeout_ms, buf *out, char *errtext, size_t errcap)
{
    uint64_t deadline = clock_now_ms() + (uint64_t)timeout_ms;
    struct pollfd fds[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
    size_t errlen = 0;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        uint64_t now = clock_now_ms();
        if (now >= deadline)
            return -1;
        int r = poll(fds, 2, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char chunk[4096];
            ssize_t got = read(fds[i].fd, chunk, sizeof(chunk));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                fds[i].fd = -1;
                continue;
            }
            if (i == 0) {
                if (out->len + (size_t)got > AWS_PROCESS_MAX_OUT || buf_append(out, chunk, (size_t)got) != 0)
                    return -2;
            } else if (errlen + 1 < errcap) {
                size_t take = (size_t)got < errcap - 1 - errlen ? (size_t)got : errcap - 1 - errlen;
                memcpy(errtext + errlen, chunk, take);
                errlen += take;
                errtext[errlen] = '\0';
            }
        }
    }
    return 0;
}

/* The first line of stderr, printable ASCII only, for the error message. */
static void aws_process_first_line(char *s)
{
    size_t n = strcspn(s, "\r\n");
    s[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (s[i] < ' ' || s[i] > '~')
            s[i] = '?';
}

int aws_process_run(const char *command, long timeout_ms, buf *out, char *err, size_t errlen)
{
    char **argv = aws_process_split(command, err, errlen);
    if (argv == NULL)
        return -1;
    int op[2] = {-1, -1}, ep[2] = {-1, -1}, rc = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    pid_t pid = -1;
    if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0) {
        aws_process_fail(err, errlen, "credential_process: pipe: %s", strerror(errno));
        goto out;
    }
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    /* The child starts as from a shell: the gateway ignores SIGPIPE and its
     * threads may block signals; neither must leak into the command. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    int spawn_rc = !fa_ok || !attr_ok ? ENOMEM
                   : (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
                      posix_spawn_file_actions_adddup2(&fa, op[1], 1) || posix_spawn_file_actions_adddup2(&fa, ep[1], 2) ||
                      posix_spawn_file_actions_addclosefrom_np(&fa, 3) ||
                      posix_spawnattr_setsigmask(&attr, &none) || posix_spawnattr_setsigdefault(&attr, &defaults) ||
                      posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
                       ? ENOMEM
                       : posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    if (spawn_rc != 0) {
        aws_process_fail(err, errlen, "credential_process: cannot run %s: %s", argv[0], strerror(spawn_rc));
        goto out;
    }
    close(op[1]);
    close(ep[1]);
    op[1] = ep[1] = -1;
    char errtext[AWS_PROCESS_MAX_ERR] = "";
    int got = aws_process_collect(op[0], ep[0], timeout_ms, out, errtext, sizeof(errtext));
    if (got != 0)
        kill(pid, SIGKILL); /* our own child, which has not been reaped yet */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    aws_process_first_line(errtext);
    if (got == -1)
        aws_process_fail(err, errlen, "credential_process %s: no answer within %ld ms (killed)", argv[0], timeout_ms);
    else if (got == -2)
        aws_process_fail(err, errlen, "credential_process %s: output larger than %d bytes", argv[0],
                         AWS_PROCESS_MAX_OUT);
    else if (WIFSIGNALED(status))
        aws_process_fail(err, errlen, "credential_process %s: killed by signal %d%s%s", argv[0], WTERMSIG(status),
                         errtext[0] ? ": " : "", errtext);
    else if (WEXITSTATUS(status) != 0)
        aws_process_fail(err, errlen, "credential_process %s: exit status %d%s%s", argv[0], WEXITSTATUS(status),
                         errtext[0] ? ": " : "", errtext);
    else if (buf_putc(out, '\0') != 0)
        aws_process_fail(err, errlen, "out of memory");
    else {
        out->len--;
        rc = 0;
    }
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 2; i++) {
        if (op[i] >= 0)
            close(op[i]);
        if (ep[i] >= 0)
            close(ep[i]);
    }
    free(argv);
    return rc;
}
