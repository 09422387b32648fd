# Sourced by every benchmark script: what they all need, written once.
#
#   server_env        with DB and PORT set: PG (unless given), BASE, the server's environment
#                     (`admin`'s password is bench-password), and the release build unless BIN
#                     names a build to measure
#   fresh_server      server_env, then DB recreated, the server started on it (stopped on
#                     exit, pid in SERVER) and ADMIN holding an admin token
#   wait_healthz URL  waits until URL/healthz answers (up to 60 s)
#   token USER        a JWT for USER, whose password is bench-password
#   create_user NAME ROLE   as admin
#   rss / peak        the server's resident memory now / at its peak, in MB
#   json EXPR         reads JSON on stdin and prints EXPR of it (`json '["id"]'`)
#   pgbench_db        (re)creates the yardstick database bench_pgbench (scale 10)
#   pgbench_select CLIENTS SECS / pgbench_insert CLIENTS SECS
#                     the yardsticks: TPS of select-only and of a single-row insert, PostgreSQL
#                     alone, on bench_pgbench
#   drop_pgbench_db   drops it again

server_env() {
    PG=${PG:-postgres://postgres@127.0.0.1:5432}
    BASE=http://127.0.0.1:$PORT
    export DATABASE_URL=$PG/$DB BIND_ADDR=127.0.0.1:$PORT ADMIN_PASSWORD=bench-password \
        JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn
    if [ -z "${BIN:-}" ]; then
        cargo build --release -q
        BIN=target/release/incident-desk
    fi
}

wait_healthz() {
    for _ in $(seq 1 600); do
        curl -fs "$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "no answer from $1/healthz" >&2
    return 1
}

# The server's resident memory now and at its peak (VmHWM), in MB; SERVER holds its pid. The
# server starts itself again with its allocator settings under the same pid, so the peak counts
# from then.
rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$SERVER/status"; }
peak() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$SERVER/status"; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

token() {
    curl -fs -X POST "$BASE/api/v1/auth/token" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"bench-password\"}" | json '["access_token"]'
}

create_user() {
    curl -fs -X POST "$BASE/api/v1/users" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"bench-password\",\"display_name\":\"$1\",\"roles\":[\"$2\"]}" >/dev/null
}

fresh_server() {
    server_env
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
    $BIN serve >/dev/null 2>&1 &
    SERVER=$!
    trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
    wait_healthz "$BASE"
    ADMIN=$(token admin)
}

pgbench_db() {
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS bench_pgbench" 2>/dev/null
    psql "$PG/postgres" -qc "CREATE DATABASE bench_pgbench"
    pgbench -q -i -s 10 "$PG/bench_pgbench" >/dev/null 2>&1
}

drop_pgbench_db() { psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS bench_pgbench"; }

_tps() { grep -E '^tps' | sed -E 's/^tps = ([0-9.]+).*/\1/'; }

pgbench_select() {
    pgbench -n -S -c "$1" -j 2 -T "${2%s}" "$PG/bench_pgbench" 2>/dev/null | _tps
}

pgbench_insert() {
    local script
    script=$(mktemp)
    printf 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now());\n' >"$script"
    pgbench -n -f "$script" -c "$1" -j 2 -T "${2%s}" "$PG/bench_pgbench" 2>/dev/null | _tps
    rm -f "$script"
}
