/* aws_assume: the credential sources of aws_creds that go through STS or the
 * shared config files, kept apart from the simple ones (static, env, ECS,
 * IMDS, credential_process) that aws_creds.c runs itself:
 *   web_identity  AssumeRoleWithWebIdentity, the token file re-read on each fetch
 *   assume_role   AssumeRole, SigV4-signed with the credentials of p->base,
 *                 which p owns (aws_creds_free frees the chain)
 *   profile       a profile of the shared files resolved into one of the
 *                 kinds (role_arn, credential_process, static keys), a
 *                 source_profile chain becoming a chain of base providers
 * For aws_creds.c only (the state is aws_creds_internal.h's); the contract
 * to the rest of the gateway is aws_creds.h's. Errors go into err, located
 * ("<file>:<line>: profile <name>: ...") when they come from a profile;
 * secrets never appear in them. */
#ifndef GW_AWS_ASSUME_H
#define GW_AWS_ASSUME_H

#include <stddef.h>

#include "aws_creds.h"
#include "config_node.h"

/* Fetches for the kinds above: the <Credentials> of STS's reply into v.
 * 0, or -1 with err. */
int aws_creds_fetch_sts(aws_creds *p, aws_creds_value *v, char *err, size_t errlen);
int aws_creds_fetch_assume_role(aws_creds *p, aws_creds_value *v, char *err, size_t errlen);

/* Setups: read the source's inputs (config, then environment), fill in the
 * session name and STS endpoint. 0, or -1 with err. */
int aws_creds_setup_web_identity(aws_creds *p, char *err, size_t errlen);
int aws_creds_setup_assume_role(aws_creds *p, char *err, size_t errlen);
/* Loads the shared files and makes p the provider its profile describes. */
int aws_creds_setup_profile(aws_creds *p, char *err, size_t errlen);
/* `auto`: whether the profile step applies (a named profile, or a default
 * profile that holds credentials). */
int aws_creds_profile_present(const aws_creds *p);

/* The `assume_role:` map of the `credentials:` node m: a provider that
 * assumes the role with the credentials of `base`, which it then owns
 * (freed on failure too). NULL with a located error. */
aws_creds *aws_creds_assume_role_from_config(aws_creds *base, const config_node *m, char *err, size_t errlen);

#endif
