#!/usr/bin/env bash
# The figures of BENCHMARKS.md "A flood of sign-ins": GET /api/v1/users/me latency for a
# signed-in user (wrk, 2 clients) while idle, then while 64 clients sign in as fast as they can
# (with the right password, which is never throttled, so every attempt hashes; then with a wrong
# one, which the throttle refuses after 5 failures). Needs the local PostgreSQL and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_login_flood
PORT=${PORT:-18096}
DURATION=${DURATION:-10s}
. bench/lib.sh
fresh_server
create_user flood service_desk
reads() {
    wrk -t1 -c2 -d"$DURATION" --latency -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/users/me" |
        grep -E "Requests/sec|50%|99%" | sed 's/^ */  /'
}
echo "== GET /users/me, idle"
reads
for password in bench-password wrong-password; do
    echo "== GET /users/me while 64 clients sign in as flood with $password"
    wrk -t1 -c64 -d"$DURATION" -s bench/sign_in.lua "$BASE/api/v1/auth/token" -- flood "$password" \
        >/tmp/login-flood.$$ 2>&1 &
    FLOOD=$!
    sleep 1
    reads
    wait $FLOOD || true
    grep -E "Requests/sec|sign-ins answered" /tmp/login-flood.$$ | sed 's/^ */  /'
    rm -f /tmp/login-flood.$$
done
