/* aws_process: runs a profile's `credential_process` command and captures
 * its standard output.
 *
 * The command is not given to a shell (as the AWS CLI, which splits it
 * itself): it is split on blanks, a double-quoted part may contain blanks
 * (the quotes are removed, there are no escapes), and the first word is
 * looked up in PATH. The child inherits the environment, gets /dev/null as
 * stdin and no other descriptor of the gateway. It must exit 0 within the
 * timeout (else it is killed) and write at most 64 KiB. On failure the
 * error carries the exit status and the first line of its stderr, which
 * tools are expected to keep free of secrets. */
#ifndef GW_AWS_PROCESS_H
#define GW_AWS_PROCESS_H

#include <stddef.h>

#include "buf.h"

/* Splits command into a NULL-terminated argv (one allocation, free() it).
 * NULL with err on an empty command or an unterminated quote. */
char **aws_process_split(const char *command, char *err, size_t errlen);

/* Runs command; its stdout (NUL-terminated, out->len excludes the NUL) in
 * out on exit status 0. -1 with err otherwise. */
int aws_process_run(const char *command, long timeout_ms, buf *out, char *err, size_t errlen);

#endif
