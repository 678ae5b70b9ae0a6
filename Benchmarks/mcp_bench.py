"""MCP request latency on one keep-alive HTTP connection, stateless 2026-07-28 requests.

  mcp_bench.py TARGET METHOD COUNT [TOOL]
TARGET: tcp:HOST:PORT (a server or an intercept). METHOD: tools/call or tools/list.
Prints "p50_ms p99_ms". (The gateway's private socket serves only its tunneler's process, so the
gateway is measured through the overlay, beside the same server hosted without it.)
"""
import http.client
import json
import socket
import statistics
import sys
import time

VERSION = "2026-07-28"


def connection(target: str) -> http.client.HTTPConnection:
    _, rest = target.split(":", 1)
    host, port = rest.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def main() -> None:
    target, method, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tool = sys.argv[4] if len(sys.argv) > 4 else "echo"
    conn = connection(target)
    meta = {"io.modelcontextprotocol/protocolVersion": VERSION, "io.modelcontextprotocol/clientCapabilities": {}}
    params = {"_meta": meta}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": VERSION, "Mcp-Method": method}
    if method == "tools/call":
        params.update({"name": tool, "arguments": {"text": "ping"}})
        headers["Mcp-Name"] = tool
    samples = []
    for index in range(count + 20):
        body = json.dumps({"jsonrpc": "2.0", "id": index, "method": method, "params": params})
        started = time.perf_counter()
        conn.request("POST", "/mcp", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b'"error"' in data[:200]:
            raise SystemExit(f"{target} {method}: HTTP {response.status}: {data[:300]!r}")
        if index >= 20:
            samples.append(elapsed * 1000)
    samples.sort()
    print(f"{statistics.median(samples):.4f} {samples[int(len(samples) * 0.99) - 1]:.4f}")


if __name__ == "__main__":
    main()
