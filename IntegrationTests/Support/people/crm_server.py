"""A Streamable HTTP MCP server (fastmcp) that authorizes per person (test code only): every tool
call verifies the gateway's statement (X-Portless-Assertion) against the controller's published
JWKS, over TLS pinned to the network CA, and `whoami` answers what it verified. GET /_stats
counts the MCP requests that reached it.

  crm_server.py PORT STATE      (STATE: the topology's state directory, for profile.json)
"""
import json
import ssl
import sys
import urllib.request

import jwt
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers
from starlette.requests import Request
from starlette.responses import JSONResponse

mcp = FastMCP("crm")
STATE = sys.argv[2]
SEEN = {"calls": 0}


def controller_keys() -> dict:
    with open(f"{STATE}/profile.json") as f:
        profile = json.load(f)
    context = ssl.create_default_context(cadata=profile["ca"])
    context.check_hostname = False  # the chain is verified against the network CA; the URL is a loopback address
    with urllib.request.urlopen(profile["controller"] + "/v1/jwks", context=context, timeout=5) as response:
        return json.load(response)


def verified_statement() -> dict:
    token = get_http_headers(include_all=True).get("x-portless-assertion")
    if not token:
        return {"verified": False, "error": "no X-Portless-Assertion header"}
    kid = jwt.get_unverified_header(token).get("kid")
    keys = [k for k in controller_keys()["keys"] if k.get("kid") == kid]
    if not keys:
        return {"verified": False, "error": f"the controller publishes no key {kid}"}
    try:
        claims = jwt.decode(token, jwt.PyJWK(keys[0]).key, algorithms=["ES256"], audience="crm")
    except jwt.PyJWTError as error:
        return {"verified": False, "error": str(error)}
    return {"verified": True, **claims}


@mcp.tool
def whoami() -> str:
    """Who this call is for, as the gateway's signed statement says."""
    SEEN["calls"] += 1
    return json.dumps(verified_statement())


@mcp.tool
def read_ticket(id: int) -> str:
    """Read a ticket."""
    SEEN["calls"] += 1
    return f"ticket {id}: printer on fire"


@mcp.tool
def write_ticket(id: int, text: str) -> str:
    """Write a ticket."""
    SEEN["calls"] += 1
    return f"ticket {id} updated"


@mcp.tool
def drop_table(name: str) -> str:
    """Drop a table."""
    SEEN["calls"] += 1
    return f"dropped {name}"


@mcp.custom_route("/_stats", methods=["GET"])
async def stats(request: Request) -> JSONResponse:
    return JSONResponse(SEEN)


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), path="/mcp", show_banner=False)
