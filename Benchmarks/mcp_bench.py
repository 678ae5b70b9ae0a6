"""MCP request latency on one keep-alive HTTP connection, stateless 2026-07-28 requests.

  mcp_bench.py TARGET METHOD COUNT [TOOL]
TARGET: tcp:HOST:PORT (a server or an intercept) or unix:PATH:IDENTITY (the gateway's private
socket, entered with the PROXY v2 header a tunneler would send). METHOD: tools/call or tools/list.
Prints "p50_ms p99_ms".
"""
import http.client
import json
import socket
import statistics
import struct
import sys
import time

VERSION = "2026-07-28"


def proxy_header(identity: str, circuit: int) -> bytes:
    def tlv(kind: int, value: bytes) -> bytes:
        return bytes([kind]) + struct.pack(">H", len(value)) + value
    tlvs = tlv(0x02, identity.encode()) + tlv(0xE0, identity.encode()) + tlv(0xE1, str(circuit).encode())
    body = bytes([127, 0, 0, 1, 127, 0, 0, 1, 0, 0, 0, 0]) + tlvs
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack(">H", len(body)) + body


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, identity: str):
        super().__init__("gateway")
        self.path, self.identity = path, identity

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
        self.sock.sendall(proxy_header(self.identity, 1))


def connection(target: str) -> http.client.HTTPConnection:
    kind, rest = target.split(":", 1)
    if kind == "unix":
        path, identity = rest.rsplit(":", 1)
        return UnixConnection(path, identity)
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
