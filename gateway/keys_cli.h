/* keys_cli: `otlp-gateway keys create|list|revoke ...`, the operator's tool
 * for gateway API keys. It parses the arguments, prints the usage, the list
 * and the new key (once, on stdout; messages go to stderr), and leaves the
 * keys file itself to auth/apikey.h, which reads, locks and rewrites it, and
 * a shared object to the keys_cli_store it is given.
 * Nothing is kept between calls; main.c owns argv and the default path. */
#ifndef GW_KEYS_CLI_H
#define GW_KEYS_CLI_H

#include <stddef.h>

#include "apikey.h"

/* Where the keys live, as the CLI uses it: read the set, or apply an edit
 * (apikey_edit_create / apikey_edit_revoke) and store the result. The CLI
 * makes one for a keys file itself; main.c passes one for a url or s3 source
 * (gateway/keys_source.h), so this file links no network client. */
typedef struct keys_cli_store {
    const char *where; /* the file or object, for messages */
    int (*load)(void *ctx, apikey_store **out, char *err, size_t errlen);
    int (*edit)(void *ctx, apikey_edit_fn fn, void *arg, char *err, size_t errlen); /* fn's result or -1 */
    void *ctx;
} keys_cli_store;

/* argv[0] is "keys", argv[1] the command. The keys are in --keys-file, else
 * in `remote` (the config's url or s3 source; NULL when none; borrowed), else
 * in `default_keys_file` (the config's auth.api_keys.file; may be NULL).
 * Returns the process exit status: 0 ok, 1 error, 2 usage error. */
int keys_cli_main(int argc, char **argv, const char *default_keys_file, const keys_cli_store *remote);

#endif
