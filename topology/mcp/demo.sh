#!/usr/bin/env bash
# The MCP half of `make demo`: two agents reach the same MCP gateway through their own
# tunnelers, see different tools (their tool policies differ), and one calls a tool.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PORTLESS_PYTHON:-python3}
agent() { "$python" "$here/mcp_agent.py" "$@"; }
state=${DEMO_STATE:?}
for name in support-agent analyst-agent; do
  address=$(portless topology status --state "$state" --json | "$python" -c "
import json, sys
print(next(i['address'] for i in json.load(sys.stdin)['intercepts'] if i['tunneler'] == '$name' and i['service'] == 'mcp'))")
  declare "url_${name%%-*}=http://$address/mcp"
done
tools() { "$python" -c 'import json,sys; print("  " + "\n  ".join(json.loads(sys.stdin.readline())["tools"]))'; }
echo
echo "\$ mcp_agent.py inventory $url_support   # MCP client as 'support-agent' (official Python SDK)"
agent inventory "$url_support" | tools
echo
echo "\$ mcp_agent.py inventory $url_analyst   # MCP client as 'analyst-agent'"
agent inventory "$url_analyst" | tools
echo
echo "\$ mcp_agent.py call $url_support tickets__create_ticket '{\"title\": \"VPN down in Lyon\"}'"
agent call "$url_support" tickets__create_ticket '{"title": "VPN down in Lyon"}'
echo
echo "\$ mcp_agent.py call $url_support files__write_file ...   # not in support-agent's policy: it does not exist for it"
agent call "$url_support" files__write_file '{"name": "x", "text": "y"}'
