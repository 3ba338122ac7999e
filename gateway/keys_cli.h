/* keys_cli: `otlp-gateway keys create|list|revoke ...`, the operator's tool
 * for gateway API keys. It parses the arguments, prints the usage, the list
 * and the new key (once, on stdout; messages go to stderr), and leaves the
 * keys file itself to auth/apikey.h, which reads, locks and rewrites it.
 * Nothing is kept between calls; main.c owns argv and the default path. */
#ifndef GW_KEYS_CLI_H
#define GW_KEYS_CLI_H

/* argv[0] is "keys", argv[1] the command. The keys file is --keys-file or
 * else `default_keys_file` (the config's auth.api_keys.file; may be NULL).
 * Returns the process exit status: 0 ok, 1 error, 2 usage error. */
int keys_cli_main(int argc, char **argv, const char *default_keys_file);

#endif
