"""A minimal Streamable HTTP MCP server of the session revision (2025-11-25), written by hand
so tests control exactly what it does: sessions live in memory (a restart forgets them, and
their next request gets 404), and the `stall` tool answers with SSE headers and then nothing.

Usage: session_http_server.py PORT
"""
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSIONS: set[str] = set()
TOOLS = [
    {"name": "echo", "description": "Return the text.", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "stall", "description": "Start an answer and never finish it.", "inputSchema": {"type": "object"}},
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(405)

    def do_DELETE(self):
        SESSIONS.discard(self.headers.get("Mcp-Session-Id", ""))
        self.reply(200)

    def do_POST(self):
        message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        method, mid = message.get("method"), message.get("id")
        if method == "server/discover":
            return self.reply(400, {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
        if method == "initialize":
            session = uuid.uuid4().hex
            SESSIONS.add(session)
            result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "sessions", "version": "1"}}
            return self.reply(200, {"jsonrpc": "2.0", "id": mid, "result": result}, {"Mcp-Session-Id": session})
        if self.headers.get("Mcp-Session-Id") not in SESSIONS:
            return self.reply(404, {"jsonrpc": "2.0", "id": mid, "error": {"code": -32001, "message": "Session not found"}})
        if mid is None:
            return self.reply(202)
        if method == "tools/list":
            return self.reply(200, {"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
        if method == "tools/call" and message["params"]["name"] == "stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3600)
            return
        if method == "tools/call":
            text = message["params"].get("arguments", {}).get("text", "")
            result = {"content": [{"type": "text", "text": f"{text} (server started {STARTED})"}]}
            return self.reply(200, {"jsonrpc": "2.0", "id": mid, "result": result})
        if method == "ping":
            return self.reply(200, {"jsonrpc": "2.0", "id": mid, "result": {}})
        self.reply(200, {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})


STARTED = uuid.uuid4().hex[:8]
if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
