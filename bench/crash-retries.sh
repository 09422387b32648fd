#!/usr/bin/env bash
# Idempotency-Key exactly once under a crash (issue 21 item 8): 8 clients create incidents for
# DURATION seconds (default 30), each request with its own Idempotency-Key and title, and retry
# every failure (no answer, 409 in use, 503) with the same key until a 2xx. The release server
# is killed with SIGKILL 10 s in and started again at once. Prints the keys sent, the 2xx
# answers, the incidents stored, the keys whose 2xx has no incident (lost) or two (duplicated),
# and how long the slowest key took from its first try to its 2xx. Lost and duplicated must be
# 0. Needs python3 and the local PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_crash_retries
PORT=${PORT:-18096}
. bench/lib.sh
fresh_server
CUSTOMER=$(curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"C1","name":"Customer 1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
create_user crash.desk service_desk
DESK=$(token crash.desk)
ANSWERED=$(mktemp)
trap 'kill -TERM $SERVER 2>/dev/null || true; rm -f "$ANSWERED"' EXIT

python3 - "$BASE" "$DESK" "${DURATION:-30}" "$CUSTOMER" "$ANSWERED" <<'PY' &
import json, sys, threading, time, urllib.error, urllib.request

base, token, duration, customer, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
start = time.monotonic()
answered, lock, statuses = {}, threading.Lock(), {}

def send(key):
    body = json.dumps({"title": key, "customer_id": customer, "reporter": {"name": "王医生"}}).encode()
    request = urllib.request.Request(f"{base}/api/v1/incidents", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)["id"]
    except urllib.error.HTTPError as error:
        return error.code, None
    except Exception as error:  # refused, reset, timed out
        return type(error).__name__, None

def client(n):
    i = 0
    while time.monotonic() - start < duration:
        key = f"crash-{n}-{i}"
        i += 1
        first = time.monotonic()
        while True:
            status, incident = send(key)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
            if isinstance(status, int) and 200 <= status < 300:
                with lock:
                    answered[key] = (incident, time.monotonic() - first)
                break
            if time.monotonic() - first > 120:
                break
            time.sleep(0.05)

threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"answers by status, retries included: {statuses}")
print(f"keys answered 2xx: {len(answered)}; slowest key: {max(t for _, t in answered.values()):.2f} s")
json.dump(answered, open(out, "w"))
PY
CLIENTS=$!
sleep 10
kill -KILL "$SERVER"
wait "$SERVER" 2>/dev/null || true
echo "server killed with SIGKILL at 10 s; started again"
$BIN serve >/dev/null 2>&1 &
SERVER=$!
wait "$CLIENTS"

psql "$PG/$DB" -Atc "SELECT title, count(*), min(id) FROM incidents WHERE title LIKE 'crash-%' GROUP BY title" |
    python3 -c '
import json, sys
answered = json.load(open(sys.argv[1]))
stored = {}
for line in sys.stdin.read().split():
    title, count, first = line.split("|")
    stored[title] = (int(count), int(first))
print(f"incidents stored: {sum(c for c, _ in stored.values())} for {len(stored)} keys")
print(f"lost (2xx, no incident): {sum(1 for k in answered if k not in stored)}")
print(f"duplicated (stored twice or more): {sum(1 for c, _ in stored.values() if c > 1)}")
print(f"2xx naming another incident than the stored one: {sum(1 for k, (i, _) in answered.items() if k in stored and stored[k][1] != i)}")
print(f"stored without a 2xx (the client gave up): {sum(1 for k in stored if k not in answered)}")
' "$ANSWERED"
