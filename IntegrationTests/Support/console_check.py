"""Plays an operator's browser, and an attacker's, against the console over HTTPS.

  console_check.py BASE_URL CA_FILE PASSWORD ROUTER INVENTORIES_JSON
INVENTORIES_JSON: {"agent": {"tools": [...], "resources": [...], "templates": [...], "prompts": [...]}}, what each
agent's own MCP client lists through the gateway of service "mcp".
The test has changed the definition of files__read_file (to one mentioning evil.example): it waits for approval.
Prints one JSON object: {"ok": true} or {"ok": false, "failures": [...]}.
"""
import html
import http.client
import json
import re
import ssl
import sys
import urllib.parse

base, ca_file, password, router, inventories_json = sys.argv[1:6]
inventories = json.loads(inventories_json)
KINDS = ["tools", "resources", "templates", "prompts"]
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


def texts(fragment):
    """The comma-separated names inside a fragment, tags stripped."""
    plain = html.unescape(re.sub(r"<[^>]+>", "", fragment or ""))
    return sorted(name.strip() for name in plain.split(",") if name.strip())


def notice(text):
    return re.findall(r'role=.(?:status|alert).[^<]*', text)


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
check("default-src 'none'" in policy and "unsafe" not in policy and "script-src 'self';" in policy, f"CSP: {policy}")
check(headers.get("X-Content-Type-Options") == "nosniff", "nosniff missing")
check(f">{router} (" in text, f"the mesh page does not show router {router}")
scripts = re.findall(r"<script[^>]*>(.*?)</script>", text, re.S)
check(re.findall(r"<script[^>]*>", text) == ['<script src="/console/console.js" defer>'] and scripts == [""],
      f"the mesh page may carry only the console's script file, nothing inline: {re.findall(r'<script[^>]*>', text)}")


def first_event(path, cookie):
    """The status, and the first server-sent event of a stream (read line by line)."""
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30)
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    lines = []
    if response.status == 200:
        while True:
            line = response.fp.readline().decode("utf-8", "replace")
            if not line or (line == "\n" and any(l.startswith("event:") for l in lines)):
                break
            lines.append(line)
    connection.close()
    return response.status, response.headers, "".join(lines)


status, headers, event = first_event("/console/events/mesh", cookie)
check(status == 200 and headers.get("Content-Type") == "text/event-stream", f"mesh events: {status} {headers.get('Content-Type')}")
check("event: mesh" in event and f">{router} (" in event, f"the mesh event does not show router {router}: {event[:300]}")
status, headers, _ = first_event("/console/events/mesh", None)
check(status == 303, f"mesh events without a session: {status}")

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


def reaches_hello(identity):
    _, _, page = request("GET", "/console/access?identity=" + identity, cookie=cookie)
    section = re.search(r'<section id="identity".*?</section>', page, re.S)
    return section is not None and ">hello<" in section.group(0)


# Editing: an identity's roles, a policy's roles — and what it reaches follows.
status, _, text = request("POST", "/console/access", {"action": "update-identity", "name": "console-made", "roles": "auditors", "csrf": token}, cookie=cookie)
check(status == 200 and "now has roles auditors" in text, f"update identity: {status} {notice(text)}")
check(reaches_hello("console-made"), "console-made (auditors) should still reach hello through auditors-dial-demo")
status, _, text = request("POST", "/console/access", {"action": "update-service-policy", "name": "auditors-dial-demo", "type": "dial",
                                                      "identities": "#nobody", "services": "#demo", "csrf": token}, cookie=cookie)
check(status == 200, f"update policy: {status} {notice(text)}")
check(not reaches_hello("console-made"), "the edited policy no longer lets console-made reach hello, but the console says it does")
status, _, text = request("POST", "/console/access", {"action": "update-service-policy", "name": "auditors-dial-demo", "type": "dial",
                                                      "identities": "#auditors, @browser-made", "services": "#demo", "csrf": token}, cookie=cookie)
check(status == 200 and reaches_hello("console-made"), f"update policy back: {status} {notice(text)}")
status, _, text = request("POST", "/console/access", {"action": "update-service-policy", "name": "no-such-policy", "type": "dial",
                                                      "identities": "#x", "services": "#y", "csrf": token}, cookie=cookie)
check(status == 400 and "no service policy named" in text, f"editing a policy that does not exist: {status} {notice(text)}")

# Configs and services: create, edit, refuse what is wrong, delete.
for form, expected, what in [
    ({"action": "create-config", "name": "console-intercept", "type": "intercept.v1", "data": '{"address": "127.0.0.1:9998"}'}, 200, "create config"),
    ({"action": "update-config", "name": "console-intercept", "type": "intercept.v1", "data": '{"address": "127.0.0.1:9999"}'}, 200, "edit config"),
    ({"action": "update-config", "name": "console-intercept", "type": "intercept.v1", "data": '{"address": '}, 400, "config data that is not JSON"),
    ({"action": "update-config", "name": "console-intercept", "type": "intercept.v1", "data": '{"port": 1}'}, 400, "config data without an address"),
    ({"action": "create-service", "name": "console-service", "roles": "demo", "configs": "console-intercept"}, 200, "create service"),
    ({"action": "create-service", "name": "console-service-2", "configs": "no-such-config"}, 400, "a service naming a missing config"),
    ({"action": "update-service", "name": "console-service", "roles": "", "configs": ""}, 200, "edit service"),
    ({"action": "delete-service", "name": "console-service"}, 200, "delete service"),
]:
    status, _, text = request("POST", "/console/access", dict(form, csrf=token), cookie=cookie)
    check(status == expected, f"{what}: {status} {notice(text)}")
_, _, text = request("GET", "/console/access", cookie=cookie)
check("127.0.0.1:9999" in text and "console-service<" not in text, "the configs and services sections do not show the edits")

# Search narrows every list.
_, _, text = request("GET", "/console/access?q=analyst", cookie=cookie)
listed = re.search(r'<section id="identities">.*?</section>', text, re.S)
check(listed is not None and "analyst-agent" in listed.group(0) and "support-agent" not in listed.group(0), "searching 'analyst' should list analyst-agent only")
listed = re.search(r'<section id="configs">.*?</section>', text, re.S)
check(listed is not None and "agent-tools" not in listed.group(0), "searching 'analyst' should list no config")

# "Who can reach what": exactly what each agent sees through the MCP gateway — tools,
# resources, resource templates and prompts — and, for each of those, exactly who sees it.
for agent, seen in inventories.items():
    status, _, text = request("GET", "/console/access?identity=" + urllib.parse.quote(agent), cookie=cookie)
    row = re.search(r'<tr><td><a href="/console/access\?service=mcp">mcp</a></td>.*?</tr>', text, re.S)
    for kind in KINDS:
        shown = re.search(rf'<span class="{kind}">(.*?)</span>', row.group(0), re.S) if row else None
        names = texts(shown.group(1)) if shown else None
        check(names == sorted(seen.get(kind, [])), f"{agent} sees {kind} {sorted(seen.get(kind, []))} through the gateway, the console says {names}")
items = sorted({name for seen in inventories.values() for kind in KINDS for name in seen.get(kind, [])})
check(len(items) > 10, f"too few items to compare: {items}")
for item in items + ["tickets__delete_ticket"]:
    status, _, text = request("GET", "/console/access?" + urllib.parse.urlencode({"service": "mcp", "item": item}), cookie=cookie)
    listed = re.search(r'<ul class="callers">(.*?)</ul>', text, re.S)
    callers = sorted(html.unescape(name) for name in re.findall(r"<li><a [^>]*>([^<]*)</a></li>", listed.group(1))) if listed else None
    expected = sorted(agent for agent, seen in inventories.items() if any(item in seen.get(kind, []) for kind in KINDS))
    check(status == 200 and callers == expected, f"who can use {item}: the agents' clients say {expected}, the console {callers}")
_, _, text = request("GET", "/console/access?service=mcp", cookie=cookie)
check("tickets__delete_ticket" in text and "files__write_file" in text and "file:///docs/{name}" in text, "the gateway's catalog is not listed")

# Approvals: the changed definition, with what changed, approved in one click.
status, _, text = request("GET", "/console/approvals", cookie=cookie)
diff = re.search(r'<pre class="diff"[^>]*>(.*?)</pre>', text, re.S)
removed = re.findall(r"<del>(.*?)</del>", diff.group(1)) if diff else []
added = re.findall(r"<ins>(.*?)</ins>", diff.group(1)) if diff else []
check(status == 200 and "files__read_file" in text, f"approvals page lacks the changed tool: {status}")
check(any("Read a document by name.&quot;" in line for line in removed) and any("evil.example" in line for line in added)
      and not any("evil.example" in line for line in removed) and not any("inputSchema" in line for line in removed + added),
      f"the diff does not show exactly the description's change: -{removed} +{added}")
status, _, text = request("POST", "/console/approvals", {"service": "mcp", "tool": "files__read_file", "csrf": "0" * 64}, cookie=cookie)
check(status == 403, f"an approval without the right CSRF token: {status}")
status, _, text = request("POST", "/console/approvals", {"service": "mcp", "tool": "files__read_file", "csrf": token}, cookie=cookie)
check(status == 200 and "Approved: files__read_file" in text and "<pre class=\"diff\"" not in text, f"approve: {status} {notice(text)}")

status, _, text = request("GET", "/console/audit?type=mcp.request", cookie=cookie)
check(status == 200 and "mcp.request" in text and "hash chain verified" in text, f"audit page: {status}")
status, _, text = request("GET", "/console/spend?by=model", cookie=cookie)
check(status == 200 and "mock-small" in text and re.search(r"0\.0000[0-9]*[1-9]", text) is not None, "spend page lacks the model's cost")
over_time = re.search(r'<section id="over-time">.*?</section>', text, re.S)
check(over_time is not None and 'class="series-0"' in over_time.group(0) and "mock-small" in over_time.group(0), "no cost over time for mock-small")
budgets = re.search(r'<section id="budgets">.*?</section>', text, re.S)
check(budgets is not None and "identity:support-agent" in budgets.group(0) and "<meter" in budgets.group(0) and "of $5.00" in budgets.group(0),
      "the spend page does not show support-agent's daily budget of $5")
verdicts = re.search(r'<section id="guardrails">.*?</section>', text, re.S)
check(verdicts is not None and "injection" in verdicts.group(0) and "support-agent" in verdicts.group(0),
      "the spend page does not show the injection the guardrail blocked")
status, _, _ = request("GET", "/console/spend?by=nonsense", cookie=cookie)
check(status == 400, f"spend by an unknown key: {status}")
status, _, _ = request("GET", "/console/audit?trace=%25", cookie=cookie)
check(status == 400, f"an audit filter on a trace id that is none: {status}")

# Signing out ends the session: the cookie no longer opens a page.
status, headers, _ = request("POST", "/console/logout", {"csrf": token}, cookie=cookie)
check(status == 303 and "Max-Age=0" in headers.get("Set-Cookie", ""), f"sign-out: {status}")
status, headers, _ = request("GET", "/console/mesh", cookie=cookie)
check(status == 303, f"a signed-out cookie still opens the mesh page: {status}")

print(json.dumps({"ok": not failures, "failures": failures}))
