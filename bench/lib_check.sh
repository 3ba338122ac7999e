#!/usr/bin/env bash
# Checks of bench/lib.sh's helpers that a benchmark run would only trip over
# by chance: free_port hands out each port once per shell. Run by
# scripts/test.sh before the bench smoke test; exits non-zero on a failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

# 400 ports from the 12,000 it picks among: drawn independently, two would
# be the same in all but about one run in a thousand (birthday bound), so
# a free_port that forgot what it handed out fails here.
n=400 ports=() port=''
for _ in $(seq "$n"); do
    free_port port
    ports+=("$port")
done
dups=$(printf '%s\n' "${ports[@]}" | sort | uniq -d)
[ -z "$dups" ] || die "free_port handed out a port twice: $(echo "$dups" | tr '\n' ' ')"
for p in "${ports[@]}"; do
    (( p >= 20000 && p < 32768 )) || die "free_port gave $p, outside 20000-32767"
done
# Several variables at once get distinct ports too.
one='' two='' three=''
free_port one two three
if [ -z "$one" ] || [ "$one" = "$two" ] || [ "$two" = "$three" ] || [ "$one" = "$three" ]; then
    die "free_port one two three gave '$one' '$two' '$three'"
fi
echo "bench lib: free_port gave $((n + 3)) distinct ports"
