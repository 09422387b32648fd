#!/usr/bin/env bash
# The figures of BENCHMARKS.md "Two instances behind HAProxy" (SPEC §14): two servers on one
# database behind HAProxy (Debian's package), a mixed workload through it for DURATION seconds,
# and one instance killed (SIGKILL) a third of the way in and started again three seconds later.
# bench/scale_out.py runs the workload and checks, from the database, that no 2xx write was
# lost, that idempotent retries landed once, that each live-stream client missed no event
# across the kill (it reconnects through HAProxy with Last-Event-ID), and that a username's
# sign-in lock holds on both instances. Prints requests, 2xx, lost and duplicates; exits non-zero
# when any check fails. Needs the local PostgreSQL, curl, python3 and haproxy.
#   bash bench/scale-out.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DB=${DB:-bench_scale_out}
PORT=${PORT:-18111}        # the first instance; the second is PORT+1, HAProxy PORT+2
DURATION=${DURATION:-30}
. bench/lib.sh
server_env
if ! command -v haproxy >/dev/null; then
    echo "haproxy is not installed (apt-get install haproxy)" >&2
    exit 1
fi
SECOND=$((PORT + 1))
BALANCER=$((PORT + 2))
WORK=$(mktemp -d)
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null

start_instance() { # PORT LOG
    BIND_ADDR=127.0.0.1:$1 TRUSTED_PROXIES=127.0.0.1 $BIN serve >>"$2" 2>&1 &
    echo $!
}
FIRST_PID=$(start_instance "$PORT" "$WORK/first.log")
wait_healthz "http://127.0.0.1:$PORT"
SECOND_PID=$(start_instance "$SECOND" "$WORK/second.log")
wait_healthz "http://127.0.0.1:$SECOND"

cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    # The live stream is one long answer.
    timeout tunnel 1h
    retries 3
    option redispatch
    option forwardfor
    # Only what never reached an instance is sent again by the balancer; a write that may have
    # been done is retried by its client, with its Idempotency-Key.
    retry-on conn-failure
frontend desk
    bind 127.0.0.1:$BALANCER
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    server first 127.0.0.1:$PORT check
    server second 127.0.0.1:$SECOND check
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY=$!
trap 'kill -TERM $FIRST_PID $SECOND_PID $HAPROXY 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_healthz "http://127.0.0.1:$BALANCER"

BASE=http://127.0.0.1:$BALANCER
ADMIN=$(token admin)
CUSTOMER=$(curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"SCALE","name":"扩展测试医院"}' | json '["id"]')
create_user scale.desk service_desk
create_user scale.manager incident_manager
create_user scale.locked service_desk

python3 bench/scale_out.py --base "$BASE" --db "$PG/$DB" --customer "$CUSTOMER" \
    --duration "$DURATION" --instances "http://127.0.0.1:$PORT,http://127.0.0.1:$SECOND" &
WORKLOAD=$!
sleep $((DURATION / 3))
echo "== $(date +%T) killing the first instance (SIGKILL)"
kill -KILL "$FIRST_PID"
sleep 3
echo "== $(date +%T) starting it again"
FIRST_PID=$(start_instance "$PORT" "$WORK/first.log")
wait "$WORKLOAD"
