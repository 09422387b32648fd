#!/usr/bin/env bash
# Webhook delivery latency with the default settings (the worker polls every second) and, for
# comparison, with WEBHOOK_POLL_INTERVAL=100ms. Needs the local PostgreSQL and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=bench_webhook_latency
PORT=${PORT:-18098}
cargo build --release -q
for poll in "" 100ms; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
    env DATABASE_URL=$PG/$DB BIND_ADDR=127.0.0.1:$PORT ADMIN_PASSWORD=bench-password RUST_LOG=warn \
        ${poll:+WEBHOOK_POLL_INTERVAL=$poll} target/release/incident-desk serve >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
    echo "== WEBHOOK_POLL_INTERVAL=${poll:-1s (default)}"
    python3 bench/webhook_latency.py "http://127.0.0.1:$PORT" 20
    kill -TERM $server; wait $server || true
done
