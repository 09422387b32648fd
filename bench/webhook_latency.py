"""Webhook delivery latency: time from the answer to POST /incidents to the signed
incident.created request arriving at a local receiver. Run by bench/webhook-latency.sh."""
import http.server
import random
import json
import statistics
import sys
import threading
import time
import urllib.request

base = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
arrivals = {}


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        arrivals[body["data"]["incident"]["id"]] = time.perf_counter()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()


def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


admin = call("POST", "/api/v1/auth/token", {"username": "admin", "password": "bench-password"})["access_token"]
customer = call("POST", "/api/v1/customers", {"code": "LAT", "name": "latency"}, admin)["id"]
call("POST", "/api/v1/users", {"username": "lat.desk", "password": "bench-password", "display_name": "d", "roles": ["service_desk"]}, admin)
desk = call("POST", "/api/v1/auth/token", {"username": "lat.desk", "password": "bench-password"})["access_token"]
call("POST", "/api/v1/webhooks", {"url": f"http://127.0.0.1:{server.server_port}/", "events": ["incident.created"], "secret": "0123456789abcdef"}, admin)

latencies = []
for i in range(rounds):
    incident = call("POST", "/api/v1/incidents", {"title": f"latency {i}", "customer_id": customer, "reporter": {"name": "王医生"}}, desk)
    answered = time.perf_counter()
    while incident["id"] not in arrivals:
        time.sleep(0.001)
    latencies.append((arrivals[incident["id"]] - answered) * 1000)
    time.sleep(random.uniform(0, 1.0))  # land anywhere in the worker's polling cycle

latencies.sort()
print(f"webhook delivery latency over {rounds} events: median {statistics.median(latencies):.0f} ms, "
      f"p90 {latencies[int(len(latencies) * 0.9) - 1]:.0f} ms, max {latencies[-1]:.0f} ms")
