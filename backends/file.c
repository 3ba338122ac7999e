/* file backend: appends each request as one OTLP/JSON line to
 * <dir>/{traces,metrics,logs}.jsonl. The line is written (and, with
 * `fsync: true`, synced) before export returns, i.e. before the client is
 * acknowledged. A mutex per file keeps lines whole: one line may need several
 * write(2) calls and O_APPEND alone does not stop interleaving then. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "log.h"

typedef struct file_out {
    pthread_mutex_t lock;
    int fd;
} file_out;

typedef struct file_backend {
    backend base;
    const char *dir;
    int fsync_each;
    file_out out[OTLP_SIGNAL_COUNT];
} file_backend;

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return -1;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static void file_destroy(backend *b)
{
    file_backend *fb = (file_backend *)b;
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        if (fb->out[s].fd >= 0)
            close(fb->out[s].fd);
        pthread_mutex_destroy(&fb->out[s].lock);
    }
    free(fb);
}

static int file_read_config(const backend_config *cfg, const char **dir, int *fsync_each, char *err, size_t errlen)
{
    static const char *const allowed[] = {"type", "dir", "fsync", NULL};
    if (config_check_keys(cfg->node, allowed, err, errlen) != 0 ||
        config_str(cfg->node, "dir", "./otlp-gateway-data", dir, err, errlen) != 0 ||
        config_bool(cfg->node, "fsync", 0, fsync_each, err, errlen) != 0)
        return -1;
    return 0;
}

static int file_check(const backend_config *cfg, char *err, size_t errlen)
{
    const char *dir;
    int fsync_each;
    return file_read_config(cfg, &dir, &fsync_each, err, errlen);
}

static backend *file_create(const backend_config *cfg, char *err, size_t errlen)
{
    const char *dir;
    int fsync_each;
    if (file_read_config(cfg, &dir, &fsync_each, err, errlen) != 0)
        return NULL;
    if (mkdir_p(dir) != 0) {
        config_error(config_get(cfg->node, "dir"), "dir", err, errlen, "cannot create directory %s: %s", dir,
                     strerror(errno));
        return NULL;
    }
    file_backend *fb = calloc(1, sizeof(*fb));
    if (fb == NULL)
        return NULL;
    fb->dir = dir;
    fb->fsync_each = fsync_each;
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        pthread_mutex_init(&fb->out[s].lock, NULL);
        fb->out[s].fd = -1;
    }
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s.jsonl", dir, otlp_signal_name((otlp_signal)s));
        fb->out[s].fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fb->out[s].fd < 0) {
            config_error(config_get(cfg->node, "dir"), "dir", err, errlen, "cannot open %s: %s", path,
                         strerror(errno));
            file_destroy(&fb->base);
            return NULL;
        }
    }
    log_info("file backend", "name=%s dir=%s fsync=%s", cfg->name, dir, fsync_each ? "on" : "off");
    return &fb->base;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static backend_status file_export(backend *b, const otlp_request *req, const export_payload *p, char *err,
                                  size_t errlen)
{
    (void)p;
    file_backend *fb = (file_backend *)b;
    buf line = BUF_INIT;
    if (otlp_encode_json(req->msg, &line) != 0 || buf_putc(&line, '\n') != 0) {
        buf_free(&line);
        snprintf(err, errlen, "out of memory encoding JSON");
        return BACKEND_RETRY;
    }
    file_out *o = &fb->out[req->signal];
    pthread_mutex_lock(&o->lock);
    off_t before = lseek(o->fd, 0, SEEK_END);
    int rc = write_all(o->fd, line.data, line.len);
    if (rc == 0 && fb->fsync_each)
        rc = fdatasync(o->fd);
    int saved = errno;
    /* A failed write must not leave half a line that the next line would
     * corrupt: cut the file back to where this line began (best effort; it
     * fails harmlessly on devices). */
    if (rc != 0 && before >= 0) {
        int ignored = ftruncate(o->fd, before);
        (void)ignored;
    }
    pthread_mutex_unlock(&o->lock);
    buf_free(&line);
    if (rc != 0) {
        snprintf(err, errlen, "write %s/%s.jsonl: %s", fb->dir, otlp_signal_name(req->signal), strerror(saved));
        return BACKEND_RETRY;
    }
    return BACKEND_OK;
}

static int file_ready(backend *b)
{
    (void)b;
    return 1;
}

static void file_flush(backend *b)
{
    file_backend *fb = (file_backend *)b;
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++) {
        pthread_mutex_lock(&fb->out[s].lock);
        fdatasync(fb->out[s].fd);
        pthread_mutex_unlock(&fb->out[s].lock);
    }
}

const backend_ops backend_file_ops = {.type = "file",
                                     .create = file_create,
                                     .check = file_check,
                                     .export = file_export,
                                     .ready = file_ready,
                                     .flush = file_flush,
                                     .destroy = file_destroy};
