/* config_node: the YAML configuration parsed with libyaml into a node tree
 * that keeps each node's file, line and column, and the typed readers every
 * floor uses to read its own section (gateway/config.h reads the top level
 * and listeners; auth, backends and routing read theirs), so every error
 * anywhere names the file, line, column and key:
 *   "gw.yaml:12:5: listeners[0].max_request_bytes: invalid size \"4XB\" (use e.g. 4MiB)".
 * Unknown keys are errors.
 *
 * Scalars may reference secrets: ${VAR} and ${VAR:-default} (environment) and
 * ${file:/path} (file contents, one trailing newline stripped). Expanded
 * values are never put in error messages or logs: errors quote the raw text.
 *
 * A config_doc owns the tree, every string and whatever its readers allocate
 * in config_doc_arena(); all of it is freed by config_doc_free(). */
#ifndef GW_CONFIG_NODE_H
#define GW_CONFIG_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "log.h"

typedef struct config_node config_node;

typedef struct config_doc config_doc;

/* Parses a YAML document (no schema): NULL with "file:line:col: message". */
config_doc *config_doc_parse(const char *source_name, const char *yaml, size_t len, char *err, size_t errlen);
/* Reads and parses a file (at most 16 MiB); the text is wiped after parsing. */
config_doc *config_doc_read(const char *path, char *err, size_t errlen);
/* The top-level node; NULL for an empty document. */
const config_node *config_doc_root(const config_doc *doc);
const char *config_doc_source(const config_doc *doc); /* the file path or source name */
/* The arena schema readers allocate what they build from the tree in. */
arena *config_doc_arena(config_doc *doc);
void config_doc_free(config_doc *doc);

/* ---- node readers, for modules parsing their own sections ----
 * Each returns 0 on success (absent optional keys take the default),
 * -1 with a located error in err. `map` must be a mapping node. */
const config_node *config_get(const config_node *map, const char *key); /* NULL if absent */
int config_is_map(const config_node *n);
int config_is_seq(const config_node *n);
size_t config_seq_len(const config_node *seq);
const config_node *config_seq_at(const config_node *seq, size_t i);
/* Iterate a mapping: key of entry i, value of entry i. */
size_t config_map_len(const config_node *map);
const char *config_map_key(const config_node *map, size_t i);
const config_node *config_map_value(const config_node *map, size_t i);
/* Scalar text after ${...} expansion, NULL if not a scalar. */
const char *config_scalar(const config_node *n);

int config_str(const config_node *map, const char *key, const char *def, const char **out, char *err,
               size_t errlen);
int config_str_required(const config_node *map, const char *key, const char **out, char *err, size_t errlen);
/* Sizes: plain bytes or with B, KB, MB, GB (10^3) or KiB, MiB, GiB (2^10). */
int config_size(const config_node *map, const char *key, size_t def, size_t *out, char *err, size_t errlen);
/* Durations: ms, s, m, h ("500ms", "10s", "1m"); plain numbers are seconds. */
int config_duration_ms(const config_node *map, const char *key, uint64_t def, uint64_t *out, char *err,
                       size_t errlen);
int config_uint(const config_node *map, const char *key, uint64_t def, uint64_t min, uint64_t max,
                uint64_t *out, char *err, size_t errlen);
int config_bool(const config_node *map, const char *key, int def, int *out, char *err, size_t errlen);
/* One of `names` (NULL-terminated): *out its index, def when absent; an
 * unknown value is an error listing the choices. */
int config_choice(const config_node *map, const char *key, const char *const *names, int def, int *out, char *err,
                  size_t errlen);
/* Error if the map has a key not in `allowed` (NULL-terminated). */
int config_check_keys(const config_node *map, const char *const *allowed, char *err, size_t errlen);
/* Format a located error about node n (or its key) into err; returns -1. */
int config_error(const config_node *n, const char *key, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The text of a scalar as written (safe to quote: never expanded), and a
 * node's 1-based line; NULL and 0 for NULL. */
const char *config_raw(const config_node *n);
unsigned config_line(const config_node *n);

/* Names (listeners, backends, pipelines) appear in metric labels and logs:
 * 1-64 of letters, digits, '_', '-', '.'. config_name reads the required
 * `name` key of map; config_name_error reports n (or n's key) as invalid. */
int config_valid_name(const char *s);
int config_name(const config_node *map, const char **out, char *err, size_t errlen);
int config_name_error(const config_node *n, const char *key, char *err, size_t errlen);
/* "host:port" or "[v6]:port"; *out NULL when absent. */
int config_valid_addr(const char *s);
/* Whether binding both valid addresses would take one port twice: the
 * same port (not 0) and the same host, or a wildcard (empty, 0.0.0.0, [::])
 * of the other's family. IPv6 sockets are bound v6-only, so 0.0.0.0 and
 * [::] do not overlap; a host name may be either family. Names are not
 * resolved: localhost and 127.0.0.1 are not seen as one. */
int config_addrs_overlap(const char *a, const char *b);
int config_addr(const config_node *map, const char *key, const char **out, char *err, size_t errlen);
/* A duration that must fit in uint32 ms and be at least min ms. */
int config_duration_u32(const config_node *map, const char *key, uint32_t def, uint32_t min, uint32_t *out,
                        char *err, size_t errlen);
/* An optional mapping section: *out NULL when absent or null; error when it
 * is not a mapping or has a key not in `allowed`. */
int config_section(const config_node *map, const char *key, const char *const *allowed, const config_node **out,
                   char *err, size_t errlen);
/* A required, non-empty sequence of non-null scalars. */
int config_str_list(const config_node *map, const char *key, const config_node **out, char *err, size_t errlen);
/* A sequence (*out NULL when absent and not required). */
int config_seq(const config_node *map, const char *key, int required, const config_node **out, char *err,
               size_t errlen);
/* An optional mapping of valid names to mappings (`backends:`): each(ctx,
 * map, i, name, value) for entry i in order, after checking its name and that
 * its value is a mapping; once as each(ctx, NULL, 0, NULL, NULL) when absent.
 * Stops at the first error. */
typedef int (*config_entry_fn)(void *ctx, const config_node *map, size_t i, const char *name,
                               const config_node *value, char *err, size_t errlen);
int config_map_of_maps(const config_node *map, const char *key, const char *what, config_entry_fn each, void *ctx,
                       char *err, size_t errlen);
/* Error when two maps of seq have the same `name` ("duplicate <what> name"),
 * or two scalars of seq are equal ("<what> \"x\" is listed twice"). Scratch
 * space comes from a. */
int config_unique_names(arena *a, const config_node *seq, const char *what, char *err, size_t errlen);
int config_unique_items(arena *a, const config_node *seq, const char *what, char *err, size_t errlen);

#endif
