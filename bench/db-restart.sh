#!/usr/bin/env bash
# Issue 11's fault check, "a 2xx still means committed": 8 clients create incidents (each with a
# unique title) for 40 s against the release server while PostgreSQL restarts once, 10 s in.
# Afterwards every title that got a 2xx must be stored exactly once; prints the answers by
# status, whether every refusal was a 503 with Retry-After, the longest request, how many titles
# that got no 2xx were stored anyway (a write that committed although its answer was lost), and
# whether service resumed by itself. Restarts the local cluster: run it on a machine whose
# PostgreSQL nobody else is using. Needs pg_ctlcluster and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=bench_db_restart
PORT=${PORT:-18095}
CLUSTER=${CLUSTER:-$(pg_lsclusters -h | awk 'NR==1 {print $1 " " $2}')}
. bench/lib.sh
fresh_server
CUSTOMER=$(curl -fs -X POST "$BASE/api/v1/customers" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"code":"C1","name":"Customer 1"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
create_user restart.desk service_desk
DESK=$(token restart.desk)

python3 - "$BASE" "$DESK" "$PG/$DB" "$CLUSTER" "${DURATION:-40}" "$CUSTOMER" <<'PY'
import json, subprocess, sys, threading, time, urllib.error, urllib.request

base, token, db, cluster = sys.argv[1:5]
DURATION, RESTART_AT, CLIENTS = float(sys.argv[5]), 10.0, 8
start = time.monotonic()
results, lock, samples = [], threading.Lock(), {}

def client(n):
    i = 0
    while time.monotonic() - start < DURATION:
        title = f"restart-{n}-{i}"
        i += 1
        body = json.dumps({"title": title, "customer_id": int(sys.argv[6]), "reporter": {"name": "王医生"}}).encode()
        request = urllib.request.Request(f"{base}/api/v1/incidents", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        t = time.monotonic()
        status, retry_after = None, None
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status, retry_after = error.code, error.headers.get("Retry-After")
            if status not in samples:
                samples[status] = error.read()[:300]
        except Exception as error:  # connection refused, timeout
            status = type(error).__name__
        with lock:
            results.append((title, status, retry_after, time.monotonic() - t, t - start))

threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
for thread in threads:
    thread.start()
time.sleep(RESTART_AT)
restart_started = time.monotonic() - start
subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster.split(), "restart"], check=True)
restart_done = time.monotonic() - start
for thread in threads:
    thread.join()

stored = subprocess.run(["psql", db, "-Atc",
    "SELECT title, count(*) FROM incidents WHERE title LIKE 'restart-%' GROUP BY title"],
    capture_output=True, text=True, check=True).stdout.split()
counts = dict(line.split("|") for line in stored)
ok = [r for r in results if isinstance(r[1], int) and 200 <= r[1] < 300]
refused = [r for r in results if r not in ok]
by_status = {}
for r in results:
    by_status[r[1]] = by_status.get(r[1], 0) + 1
print(f"PostgreSQL restarted from {restart_started:.1f} s to {restart_done:.1f} s")
print(f"requests: {len(results)}; answers by status: {by_status}")
for status, sample in samples.items():
    print(f"  a {status}: {sample.decode(errors='replace')}")
print(f"2xx stored exactly once: {sum(1 for r in ok if counts.get(r[0]) == '1')} of {len(ok)}")
print(f"stored twice or more: {sum(1 for n in counts.values() if int(n) > 1)}")
print(f"2xx not stored: {sum(1 for r in ok if r[0] not in counts)}")
print(f"refused but stored anyway (committed, answer lost): {sum(1 for r in refused if r[0] in counts)}")
print(f"refusals that are 503 with Retry-After: {sum(1 for r in refused if r[1] == 503 and r[2])} of {len(refused)}")
print(f"longest request: {max(r[3] for r in results):.2f} s; over 10 s: {sum(1 for r in results if r[3] > 10)}")
answered = sorted(r[4] + r[3] for r in ok)
gap, gap_end = max((b - a, b) for a, b in zip(answered, answered[1:]))
print(f"longest time without a 2xx: {gap:.2f} s, ending at {gap_end:.1f} s")
after = [r for r in ok if r[4] > restart_done]
print(f"2xx after the restart finished: {len(after)} (first at {min((r[4] for r in after), default=float('nan')):.1f} s)")
PY
