"""Console pages beside the management API calls they show, on a running network.

  Benchmarks/console_bench.py STATE_DIR [COUNT]
STATE_DIR: a `portless topology up` state directory (profile.json, controller/admin.json).
Prints, per page, the p50 and p99 of serving it (one keep-alive HTTPS connection, signed in)
beside the p50 of the API call that returns the same data as JSON.
"""
import http.client
import json
import ssl
import statistics
import sys
import time
import urllib.parse

state = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
profile = json.load(open(f"{state}/profile.json"))
password = json.load(open(f"{state}/controller/admin.json"))["password"]
url = urllib.parse.urlsplit(profile["controller"])
context = ssl.create_default_context(cafile=f"{state}/controller/ca.pem")
context.check_hostname = False
connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30)


def call(method, path, body=None, headers=None):
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    return response.status, response.headers, data


_, headers, _ = call("POST", "/console/login", urllib.parse.urlencode({"username": "admin", "password": password}),
                     {"Content-Type": "application/x-www-form-urlencoded"})
cookie = {"Cookie": headers.get("Set-Cookie", "").split(";")[0]}
_, _, login = call("POST", "/v1/login", json.dumps({"username": "admin", "password": password}), {"Content-Type": "application/json"})
bearer = {"Authorization": "Bearer " + json.loads(login)["token"]}


def timed(path, headers):
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        status, _, _ = call("GET", path, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 200, f"{path}: {status}"
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


pairs = [("/console/mesh", "/v1/network"), ("/console/access", "/v1/identities"),
         ("/console/access?identity=support-agent", "/v1/mcp/visible?service=mcp&identity=support-agent"),
         ("/console/audit", "/v1/audit?limit=500"), ("/console/spend", "/v1/llm/usage/daily"), ("/console/approvals", "/v1/mcp/pins")]
for page, api in pairs:
    p50, p99 = timed(page, cookie)
    reference, _ = timed(api, bearer)
    print(f"{page:45s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms   beside {api}: p50 {reference:6.2f} ms")
