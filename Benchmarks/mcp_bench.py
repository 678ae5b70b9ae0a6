"""MCP request latency on one keep-alive HTTP connection, stateless 2026-07-28 requests.

  mcp_bench.py TARGET METHOD COUNT [TOOL] [--beside TARGET2 TOOL2]
TARGET: tcp:HOST:PORT (a server or an intercept). METHOD: tools/call or tools/list.
Prints "p50_ms p99_ms". (The gateway's private socket serves only its tunneler's process, so the
gateway is measured through the overlay, beside the same server hosted without it.)
With --beside, calls alternate between the two targets (one connection each), so both see the
same moments of a noisy machine; prints "p50 p99" of TARGET, then of TARGET2.
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


class Client:
    def __init__(self, target: str, method: str, tool: str):
        self.target, self.method = target, method
        self.conn = connection(target)
        meta = {"io.modelcontextprotocol/protocolVersion": VERSION, "io.modelcontextprotocol/clientCapabilities": {}}
        self.params = {"_meta": meta}
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                        "MCP-Protocol-Version": VERSION, "Mcp-Method": method}
        if method == "tools/call":
            self.params.update({"name": tool, "arguments": {"text": "ping"}})
            self.headers["Mcp-Name"] = tool
        self.samples = []

    def call(self, index: int, keep: bool) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": index, "method": self.method, "params": self.params})
        started = time.perf_counter()
        self.conn.request("POST", "/mcp", body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b'"error"' in data[:200]:
            raise SystemExit(f"{self.target} {self.method}: HTTP {response.status}: {data[:300]!r}")
        if keep:
            self.samples.append(elapsed * 1000)

    def figures(self) -> str:
        samples = sorted(self.samples)
        return f"{statistics.median(samples):.4f} {samples[int(len(samples) * 0.99) - 1]:.4f}"


def main() -> None:
    args = sys.argv[1:]
    beside = None
    if "--beside" in args:
        at = args.index("--beside")
        beside, args = args[at + 1:at + 3], args[:at]
    target, method, count = args[0], args[1], int(args[2])
    tool = args[3] if len(args) > 3 else "echo"
    clients = [Client(target, method, tool)]
    if beside:
        clients.append(Client(beside[0], method, beside[1]))
    for index in range(count + 20):
        for client in clients:
            client.call(index, keep=index >= 20)
    print(" ".join(client.figures() for client in clients))


if __name__ == "__main__":
    main()
