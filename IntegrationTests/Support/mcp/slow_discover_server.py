"""A minimal Streamable HTTP MCP server that speaks the stateless revision (2026-07-28) and the
session handshake both, and answers its first `server/discover` only after DELAY seconds: a
stateless server that is slow to start. The gateway must not take it for an older server.

Usage: slow_discover_server.py PORT DELAY    (prints the port it listens on)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY = float(sys.argv[2])
first = threading.Lock()
slowed = {"done": False}
TOOL = {"name": "ping", "description": "Answer pong.", "inputSchema": {"type": "object", "properties": {}}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        method, ident = message.get("method"), message.get("id")
        headers = {}
        if method == "server/discover":
            with first:
                if not slowed["done"]:
                    slowed["done"] = True
                    time.sleep(DELAY)
            result = {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}, "resultType": "complete"}
        elif method == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "slow", "version": "1"}}
            headers["Mcp-Session-Id"] = "s1"
        elif method == "tools/list":
            result = {"tools": [TOOL]}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": "pong"}]}
        elif ident is None:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            body = json.dumps({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "Method not found"}}).encode()
            return self.reply(body, headers)
        self.reply(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}).encode(), headers)

    def reply(self, body, headers):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
