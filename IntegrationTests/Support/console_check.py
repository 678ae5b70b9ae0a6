"""Plays an operator's browser, and an attacker's, against the console over HTTPS.

  console_check.py BASE_URL CA_FILE PASSWORD ROUTER TOOLS_JSON
TOOLS_JSON: {"agent": ["tool", ...]}, the MCP tools each agent sees through the gateway of service "mcp".
Prints one JSON object: {"ok": true, "identity": ..., "policy": ...} or {"ok": false, "failures": [...]}.
"""
import html
import http.client
import json
import re
import ssl
import sys
import urllib.parse

base, ca_file, password, router, tools_json = sys.argv[1:6]
url = urllib.parse.urlsplit(base)
context = ssl.create_default_context(cafile=ca_file)
context.check_hostname = False  # the controller's certificate names the controller, not 127.0.0.1; the CA is pinned
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def request(method, path, form=None, cookie=None):
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30)
    headers = {}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if cookie:
        headers["Cookie"] = cookie
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read().decode("utf-8", "replace")
    connection.close()
    return response.status, response.headers, text


def csrf_of(text):
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
    return found.group(1) if found else ""


# No session: every page sends the browser to sign in.
for page in ["/console/mesh", "/console/access", "/console/audit", "/console/spend", "/console/approvals"]:
    status, headers, _ = request("GET", page)
    check(status == 303 and headers.get("Location") == "/console/login", f"{page} without a session: {status} {headers.get('Location')}")
status, _, _ = request("POST", "/console/access", {"action": "create-identity", "name": "nosession"})
check(status == 303, f"a change without a session: {status}")

# Sign-in: a wrong password is refused; the right one sets a cookie scripts and other sites cannot use.
status, _, text = request("POST", "/console/login", {"username": "admin", "password": "wrong"})
check(status == 401 and "Wrong username or password" in text, f"wrong password: {status}")
status, headers, _ = request("POST", "/console/login", {"username": "admin", "password": password})
cookie_header = headers.get("Set-Cookie", "")
check(status == 303 and headers.get("Location") == "/console/mesh", f"sign-in: {status}")
for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/console"]:
    check(flag in cookie_header, f"cookie lacks {flag}: {cookie_header}")
cookie = cookie_header.split(";")[0]

status, headers, text = request("GET", "/console/mesh", cookie=cookie)
policy = headers.get("Content-Security-Policy", "")
check(status == 200, f"mesh page: {status}")
check("default-src 'none'" in policy and "unsafe" not in policy and "script-src" not in policy, f"CSP: {policy}")
check(headers.get("X-Content-Type-Options") == "nosniff", "nosniff missing")
check(f">{router} (" in text, f"the mesh page does not show router {router}")
check("<script" not in text, "a script on the mesh page")

# Changes need the CSRF token of this session: missing or wrong, refused, and nothing changes.
status, _, text = request("GET", "/console/access", cookie=cookie)
token = csrf_of(text)
check(status == 200 and len(token) == 64, f"access page: {status}, csrf {token!r}")
status, _, _ = request("POST", "/console/access", {"action": "create-identity", "name": "forged-a", "roles": "x"}, cookie=cookie)
check(status == 403, f"no CSRF token: {status}")
status, _, _ = request("POST", "/console/access", {"action": "create-identity", "name": "forged-b", "csrf": "0" * 64}, cookie=cookie)
check(status == 403, f"a wrong CSRF token: {status}")

status, _, text = request("POST", "/console/access", {"action": "create-identity", "name": "console-made", "roles": "auditors, clients",
                                                      "csrf": token}, cookie=cookie)
check(status == 200 and "Identity &#39;console-made&#39; created" in text, f"create identity: {status} {re.findall(r'role=.(?:status|alert).[^<]*', text)}")
status, _, text = request("POST", "/console/access", {"action": "create-service-policy", "name": "auditors-dial-demo", "type": "dial",
                                                      "identities": "#auditors", "services": "#demo", "csrf": token}, cookie=cookie)
check(status == 200 and "auditors-dial-demo" in text, f"create policy: {status}")
status, _, text = request("POST", "/console/access", {"action": "create-identity", "name": "<img src=x>", "csrf": token}, cookie=cookie)
check(status == 400 and "<img src=x>" not in text, "a hostile name is refused and shown escaped")
status, _, text = request("GET", "/console/access?identity=console-made", cookie=cookie)
check("What &#39;console-made&#39; can reach" in text and ">hello<" in text, "console-made should reach 'hello' through #clients")

# "Who can reach what": exactly the tools each agent sees through the MCP gateway.
for agent, expected in json.loads(tools_json).items():
    status, _, text = request("GET", "/console/access?identity=" + urllib.parse.quote(agent), cookie=cookie)
    row = re.search(r"<tr><td>mcp</td>.*?</tr>", text)
    shown = re.search(r'<span class="tools">([^<]*)</span>', row.group(0)) if row else None
    tools = sorted(html.unescape(shown.group(1)).split(", ")) if shown and shown.group(1) else []
    check(tools == sorted(expected), f"{agent} sees {sorted(expected)} through the gateway, the console says {tools}")

status, _, text = request("GET", "/console/audit?type=mcp.request", cookie=cookie)
check(status == 200 and "mcp.request" in text and "hash chain verified" in text, f"audit page: {status}")
status, _, text = request("GET", "/console/spend?by=model", cookie=cookie)
check(status == 200 and "mock-small" in text and re.search(r"0\.0000[0-9]*[1-9]", text) is not None, "spend page lacks the model's cost")
status, _, text = request("GET", "/console/approvals", cookie=cookie)
check(status == 200 and "waiting for approval" in text, f"approvals page: {status}")

# Signing out ends the session: the cookie no longer opens a page.
status, headers, _ = request("POST", "/console/logout", {"csrf": token}, cookie=cookie)
check(status == 303 and "Max-Age=0" in headers.get("Set-Cookie", ""), f"sign-out: {status}")
status, headers, _ = request("GET", "/console/mesh", cookie=cookie)
check(status == 303, f"a signed-out cookie still opens the mesh page: {status}")

print(json.dumps({"ok": not failures, "failures": failures}))
