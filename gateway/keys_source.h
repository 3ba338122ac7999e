/* keys_source: a fleet's shared API key set, kept in one object that every
 * gateway instance polls: `auth.api_keys.url` (http:// or https://, polled
 * with If-None-Match on the last ETag) or `auth.api_keys.s3` (s3://bucket/key,
 * GET and PUT signed with SigV4 by backends/aws_export.h, region and
 * credentials read as the AWS backends read them); `ca_file` verifies either
 * against a private CA. The object is the keys
 * file's document; auth/apikey.h parses and formats it.
 *
 * The poller (one thread) hands every new key set to auth_keys_replace. A
 * source that is unreachable or serves a bad document leaves the last good
 * set in place; the state change (not every failed poll) is logged, and
 * metrics say whether the source is up, when it last answered, and how each
 * fetch ended.
 *
 * The keys CLI edits an s3 source with conditional writes (keys_source_edit):
 * GET (note the ETag), edit, PUT with If-Match: <etag> (If-None-Match: * when
 * the object does not exist yet); a 412 means another writer came first, so
 * it reads again and re-applies the edit, a bounded number of times. A url
 * source is read-only.
 *
 * Secrets (credentials, the document's hashes are not secrets) never reach
 * logs or errors. Not thread-safe: one thread uses a keys_source at a time
 * (the poller once started, else its creator). */
#ifndef GW_KEYS_SOURCE_H
#define GW_KEYS_SOURCE_H

#include <stddef.h>

#include "apikey.h"
#include "auth.h"
#include "config_node.h"

typedef struct keys_source keys_source;

/* Reads `api_keys` (the auth.api_keys map, NULL when absent). 0 with *out
 * NULL when it names no url or s3 source (a file, or nothing); 0 with a new
 * source the caller owns (keys_source_free); or -1 with a located config
 * error. Fetches nothing and starts nothing. */
int keys_source_from_config(const config_node *api_keys, keys_source **out, char *err, size_t errlen);

/* "https://host/path" or "s3://bucket/key": for messages and logs. */
const char *keys_source_where(const keys_source *ks);

/* Starts the poller: it fetches at once, then every poll_interval, and hands
 * each new key set to auth_keys_replace(a, ...). `a` must outlive the source.
 * Also registers the source's metrics. -1 with err on failure. */
int keys_source_start(keys_source *ks, auth *a, char *err, size_t errlen);

/* Stops the poller (waiting at most for the fetch in flight) and frees. */
void keys_source_free(keys_source *ks);

/* One read of the object, for `keys list`: a missing object is an empty
 * store. *out is the caller's. 0, or -1 with err. */
int keys_source_load(keys_source *ks, apikey_store **out, char *err, size_t errlen);

/* Applies fn(store, ctx) to the object with a conditional write, re-reading
 * and re-applying on a conflicting write. Returns fn's result (0 written,
 * 1 nothing to change) or -1 with err; a url source always fails (read-only). */
int keys_source_edit(keys_source *ks, apikey_edit_fn fn, void *ctx, char *err, size_t errlen);

#endif
