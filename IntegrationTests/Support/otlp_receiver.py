"""A tiny OpenTelemetry collector for tests: accepts OTLP/HTTP JSON posts to /v1/traces on a free
loopback port (printed first on stdout) and appends each body, as one line, to the file named
by its argument."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = sys.argv[1]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces" or not self.headers.get("Content-Type", "").startswith("application/json"):
            self.send_response(415 if self.path == "/v1/traces" else 404)
            self.end_headers()
            return
        with open(OUT, "ab") as out:
            out.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
