"""The workload of bench/scale-out.sh: writes, reads, live-stream clients and a sign-in lock
through a balancer while an instance is killed and restarted; then the checks, from the
database.

Writers create incidents, each with an Idempotency-Key, and retry a failed request (connection
lost, 5xx) with the same key until it answers 2xx; now and then they send a succeeded request
again on purpose, which must answer the same incident. Readers list and search. Stream clients
follow incident.created and reconnect with Last-Event-ID whenever their connection ends.
"""

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--db", required=True)
parser.add_argument("--customer", type=int, required=True)
parser.add_argument("--duration", type=int, default=30)
parser.add_argument("--instances", required=True)
args = parser.parse_args()
base = urllib.parse.urlparse(args.base)
stop_at = time.monotonic() + args.duration
lock = threading.Lock()
counts = {"requests": 0, "2xx": 0, "retried": 0, "replays": 0, "replay_mismatch": 0, "reads": 0,
          "reads_2xx": 0, "stream_reconnects": 0}
created = {}  # key -> incident id
problems = []


def count(name, n=1):
    with lock:
        counts[name] += n


def connection(url=None):
    parsed = urllib.parse.urlparse(url) if url else base
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)


def call(conn, method, path, token=None, body=None, headers=None):
    """One request on `conn`; (status, parsed body) or raises on a transport failure."""
    all_headers = {"Content-Type": "application/json"}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    try:
        return response.status, json.loads(data) if data else None
    except ValueError:
        return response.status, None


def sign_in(username, password="bench-password", url=None):
    conn = connection(url)
    status, body = call(conn, "POST", "/api/v1/auth/token",
                        body={"username": username, "password": password})
    conn.close()
    return status, body


def token_of(username):
    status, body = sign_in(username)
    assert status == 200, (username, status, body)
    return body["access_token"]


desk = token_of("scale.desk")
manager = token_of("scale.manager")


def writer(n):
    conn = connection()
    i = 0
    while time.monotonic() < stop_at:
        key = str(uuid.uuid4())
        body = {"title": f"scale-out {key}", "customer_id": args.customer,
                "description": f"writer {n} request {i}", "reporter": {"name": "王医生"}}
        attempts = 0
        while True:
            attempts += 1
            count("requests")
            try:
                status, answer = call(conn, "POST", "/api/v1/incidents", desk, body,
                                      {"Idempotency-Key": key})
            except (OSError, http.client.HTTPException):
                status, answer = None, None
                conn.close()
                conn = connection()
            if status is not None and 200 <= status < 300:
                count("2xx")
                with lock:
                    created[key] = answer["id"]
                break
            if status is not None and status < 500 and status != 429:
                with lock:
                    problems.append(f"create answered {status}: {answer}")
                break
            count("retried")
            if attempts > 50:
                with lock:
                    problems.append(f"create {key} never succeeded")
                break
            time.sleep(0.1)
        # Every tenth write is sent again, as a client that lost the answer would.
        if i % 10 == 0 and key in created:
            try:
                count("requests")
                status, answer = call(conn, "POST", "/api/v1/incidents", desk, body,
                                      {"Idempotency-Key": key})
                if 200 <= status < 300:
                    count("2xx")
                    count("replays")
                    if answer["id"] != created[key]:
                        count("replay_mismatch")
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = connection()
        i += 1


def reader():
    conn = connection()
    paths = ["/api/v1/incidents?limit=50", "/api/v1/incidents?q=scale-out&limit=20",
             "/api/v1/incidents?status=new&sort=due_at&limit=50"]
    i = 0
    while time.monotonic() < stop_at:
        count("reads")
        try:
            status, _ = call(conn, "GET", paths[i % len(paths)], manager)
            if 200 <= status < 300:
                count("reads_2xx")
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = connection()
            time.sleep(0.05)
        i += 1


class StreamClient(threading.Thread):
    """Follows incident.created; reconnects with Last-Event-ID until `stop_at` plus a grace."""

    def __init__(self):
        super().__init__(daemon=True)
        self.incidents = set()
        self.last_id = None
        self.connections = 0

    def run(self):
        while time.monotonic() < stop_at + 5:
            headers = {"Authorization": f"Bearer {manager}", "Accept": "text/event-stream"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            conn = http.client.HTTPConnection(base.hostname, base.port, timeout=3)
            try:
                conn.request("GET", "/api/v1/stream?types=incident.created", headers=headers)
                response = conn.getresponse()
                if response.status != 200:
                    time.sleep(0.2)
                    continue
                self.connections += 1
                event_id = None
                while time.monotonic() < stop_at + 5:
                    line = response.readline()
                    if not line:
                        break
                    line = line.decode().rstrip("\n")
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        if data.get("type") == "incident.created":
                            self.incidents.add(data["incident_id"])
                        self.last_id = event_id
            except (OSError, http.client.HTTPException, ValueError):
                pass
            finally:
                conn.close()
            time.sleep(0.1)


# A username's lock counts the failures on every instance: five wrong passwords, sent to the two
# instances in turn, lock it on both.
instances = args.instances.split(",")
for attempt in range(5):
    status, _ = sign_in("scale.locked", "wrong password", instances[attempt % 2])
    if status != 401:
        problems.append(f"wrong password {attempt + 1} answered {status}")
lock_answers = [sign_in("scale.locked", url=url)[0] for url in instances]
if lock_answers != [429, 429]:
    problems.append(f"the sign-in lock did not hold on both instances: {lock_answers}")

streams = [StreamClient() for _ in range(2)]
for client in streams:
    client.start()
time.sleep(1)
threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
threads += [threading.Thread(target=reader) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for client in streams:
    client.join()


def sql(query):
    return subprocess.run(["psql", args.db, "-Atc", query], check=True, capture_output=True,
                          text=True).stdout.strip()


stored = {}
for line in sql("SELECT id, substr(title, 11) FROM incidents WHERE title LIKE 'scale-out %'").splitlines():
    incident_id, key = line.split("|", 1)
    stored.setdefault(key, []).append(int(incident_id))
lost = [key for key, incident_id in created.items() if incident_id not in stored.get(key, [])]
duplicates = sum(len(ids) - 1 for ids in stored.values())
all_created = {i for ids in stored.values() for i in ids}

print(f"requests {counts['requests']}  2xx {counts['2xx']}  retried {counts['retried']}  "
      f"creates {len(created)}  lost {len(lost)}  duplicates {duplicates}  "
      f"replays {counts['replays']} (other incident: {counts['replay_mismatch']})")
print(f"reads {counts['reads']}  2xx {counts['reads_2xx']}")
for n, client in enumerate(streams):
    missing = all_created - client.incidents
    print(f"stream client {n}: {client.connections} connections, "
          f"{len(client.incidents & all_created)} of {len(all_created)} incident.created, "
          f"missing {len(missing)}")
    if missing:
        problems.append(f"stream client {n} missed {len(missing)} events")
print(f"sign-in lock after 5 failures split over both instances: {lock_answers}")
if lost:
    problems.append(f"{len(lost)} writes answered 2xx are not stored")
if duplicates:
    problems.append(f"{duplicates} duplicate incidents")
if counts["replay_mismatch"]:
    problems.append("a replay answered another incident")
for problem in sorted(set(problems))[:20]:
    print(f"PROBLEM ({problems.count(problem)}x):", problem[:300])
sys.exit(1 if problems else 0)
