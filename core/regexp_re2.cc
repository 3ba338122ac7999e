/* regexp: the C interface to RE2 (see regexp.h). C++ stays inside this
 * file: no exception or C++ type crosses the interface. */
#include "regexp.h"

#include <re2/re2.h>

#include <cstdio>
#include <new>

struct regexp {
    RE2 re;
    RE2::Anchor anchor;
    regexp(const char *pattern, const RE2::Options &opt, RE2::Anchor a) : re(pattern, opt), anchor(a) {}
};

extern "C" regexp *regexp_compile(const char *pattern, regexp_anchor anchor, char *err, size_t errlen)
{
    RE2::Options opt; /* RE2's defaults are Go's syntax: UTF-8, Perl classes, ^ and $ at the text's ends */
    opt.set_log_errors(false); /* errors are returned, never printed to stderr */
    regexp *r = nullptr;
    try { /* RE2 allocates with plain new: out of memory must not unwind into C */
        r = new regexp(pattern, opt, anchor == REGEXP_FULL ? RE2::ANCHOR_BOTH : RE2::UNANCHORED);
    } catch (const std::bad_alloc &) {
        r = nullptr;
    }
    if (r == nullptr) {
        snprintf(err, errlen, "out of memory");
        return nullptr;
    }
    if (!r->re.ok()) {
        /* RE2 names the offending fragment; the note tells a user coming
         * from POSIX or PCRE why a familiar construct is refused. */
        snprintf(err, errlen, "%s (RE2 syntax, as Go's regexp: no backreferences, lookaround or POSIX word "
                              "boundaries)", r->re.error().c_str());
        delete r;
        return nullptr;
    }
    return r;
}

extern "C" int regexp_match(const regexp *re, const char *s, size_t len)
{
    return re->re.Match(re2::StringPiece(s, len), 0, len, re->anchor, nullptr, 0) ? 1 : 0;
}

extern "C" void regexp_free(regexp *re)
{
    delete re;
}
