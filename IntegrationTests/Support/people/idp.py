"""A test identity provider (test code only): one RSA key, whose JWK set it serves at /jwks, and
tokens it mints on request at POST /mint, the way an enterprise IdP issues them to people.

  idp.py PORT

POST /mint takes {"sub", "groups", "aud", "iss", "exp_in", "nbf_in", "alg"} (all but "sub"
optional; "alg": "none" mints an unsigned token) and answers the compact JWT. GET /stats counts
the JWKS fetches.
"""
import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.corp.test"
KID = "corp-2026"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STATS = {"jwks": 0}


def b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def key_set() -> dict:
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    jwk.update(kid=KID, alg="RS256", use="sig")
    return {"keys": [jwk]}


def mint(spec: dict) -> str:
    now = int(time.time())
    claims = {"iss": spec.get("iss", ISSUER), "sub": spec["sub"], "aud": spec.get("aud", "portless"),
              "iat": now, "exp": now + int(spec.get("exp_in", 600))}
    if "nbf_in" in spec:
        claims["nbf"] = now + int(spec["nbf_in"])
    if "groups" in spec:
        claims["groups"] = spec["groups"]
    if spec.get("alg") == "none":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": KID})


class Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/jwks":
            STATS["jwks"] += 1
            self.reply(200, json.dumps(key_set()).encode(), "application/json")
        elif self.path == "/stats":
            self.reply(200, json.dumps(STATS).encode(), "application/json")
        else:
            self.reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self.path != "/mint":
            return self.reply(404, b"not found", "text/plain")
        spec = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.reply(200, mint(spec).encode(), "text/plain")

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
