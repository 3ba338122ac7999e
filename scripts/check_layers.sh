#!/bin/bash
# Layering check (docs/architecture.md, "Layers"): every #include "x" in a
# floor must name a header of that floor, of a floor below it, or one that
# protoc-c generates from proto/. The build enforces the same through each
# floor's include folders; this check also catches a path that walks around
# them ("../gateway/x.h") and says which line broke the rule.
# With a build directory argument it also checks that the auth unit test
# links no libcurl, zstd or snappy (auth stays free of the network client and
# of the backends' compression).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A below=(
    [core]=""
    [otlp]="core"
    [auth]="core"
    [backends]="core otlp"
    [routing]="core otlp backends"
    [gateway]="core otlp auth backends routing"
)

# The floor that owns header h ("" when none: a system or generated header).
owner() {
    local h=$1 f
    for f in "${!below[@]}"; do
        [ -f "$f/$h" ] && { echo "$f"; return; }
    done
    echo ""
}

bad=0
for floor in "${!below[@]}"; do
    allowed=" $floor ${below[$floor]} "
    while IFS=: read -r file line inc; do
        h=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")
        if [[ $h == */* ]]; then
            echo "layers: $file:$line: includes \"$h\" by path; name the header and let the floor's include folders find it"
            bad=1
            continue
        fi
        [[ $h == *.pb-c.h ]] && [ -f "proto/${h%.pb-c.h}.proto" ] && continue
        o=$(owner "$h")
        if [ -z "$o" ]; then
            echo "layers: $file:$line: \"$h\" is not a header of any floor"
            bad=1
        elif [[ $allowed != *" $o "* ]]; then
            echo "layers: $file:$line: $floor/ includes $o/$h, a floor above it (allowed: $floor ${below[$floor]})"
            bad=1
        fi
    done < <(shopt -s nullglob; grep -Hn '#include "' "$floor"/*.[ch] "$floor"/*.cc || true)
done

if [ $# -ge 1 ]; then
    t="$1/tests/unit/test_auth"
    if [ ! -x "$t" ]; then
        echo "layers: $t not built"
        bad=1
    elif libs=$(ldd "$t" | grep -Eo 'lib(curl|zstd|snappy)[^ ]*' | sort -u | tr '\n' ' ') && [ -n "$libs" ]; then
        echo "layers: test_auth links $libs(auth must not depend on the network client or the backends)"
        bad=1
    fi
fi

[ $bad -eq 0 ] && echo "layers: ok (core <- otlp <- auth, backends <- routing <- gateway)"
exit $bad
