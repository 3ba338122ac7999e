/* aws_ini: the AWS SDKs' shared config and credentials files
 * (~/.aws/config, ~/.aws/credentials), parsed into profiles.
 *
 * Format, as the SDKs read it: `[section]` lines, `key = value` lines,
 * whole-line comments starting with '#' or ';' (also allowed after a
 * section header), blank lines. In the config file a profile is
 * `[default]` or `[profile NAME]`; other sections (`[sso-session x]`,
 * `[services x]`, a bare `[x]`) are not profiles and are skipped. In the
 * credentials file every `[NAME]` is a profile and `[profile NAME]` is
 * skipped. An indented line after `key =` (empty value) is a sub-property
 * and ignored; after `key = value` it continues the value (joined with a
 * newline). Values are taken verbatim: no inline comments, no quotes.
 * Keys compare case-insensitively; a repeated key or section: the last
 * value wins. Errors are located: "<file>:<line>: ...".
 *
 * aws_profiles pairs the two files. A key of a profile is looked up in the
 * credentials file first, then in the config file, as the SDKs do. */
#ifndef GW_AWS_INI_H
#define GW_AWS_INI_H

#include <stddef.h>

typedef struct aws_ini aws_ini;

typedef enum { AWS_INI_CONFIG, AWS_INI_CREDENTIALS } aws_ini_kind;

/* Parses text[0..len) read from `name` (used in errors). NULL with a
 * located error in err. */
aws_ini *aws_ini_parse(const char *name, const char *text, size_t len, aws_ini_kind kind, char *err, size_t errlen);
/* Whether `profile` has a section in the file. */
int aws_ini_has_profile(const aws_ini *f, const char *profile);
/* The value of key in profile, NULL if absent; *line (NULL ok) its line. */
const char *aws_ini_get(const aws_ini *f, const char *profile, const char *key, unsigned *line);
const char *aws_ini_name(const aws_ini *f);
void aws_ini_free(aws_ini *f);

typedef struct aws_profiles {
    aws_ini *config;      /* NULL: no config file */
    aws_ini *credentials; /* NULL: no credentials file */
} aws_profiles;

/* Reads AWS_CONFIG_FILE (else ~/.aws/config) and AWS_SHARED_CREDENTIALS_FILE
 * (else ~/.aws/credentials). A file that does not exist is not an error;
 * one that cannot be read or parsed is. 0, or -1 with err. */
int aws_profiles_load(aws_profiles *p, char *err, size_t errlen);
int aws_profiles_has(const aws_profiles *p, const char *profile);
/* The key's value in profile, NULL if absent. `where` (NULL ok) gets
 * "<file>:<line>" of the value, for errors. */
const char *aws_profiles_get(const aws_profiles *p, const char *profile, const char *key, char *where,
                             size_t wherecap);
void aws_profiles_free(aws_profiles *p);

#endif
