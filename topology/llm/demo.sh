#!/usr/bin/env bash
# The LLM half of `make demo`: an agent asks the LLM gateway for a chat completion through the
# overlay with the official OpenAI client (no provider key on the agent), then the operator
# reads what it cost.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PORTLESS_PYTHON:-python3}
state=${DEMO_STATE:?}
address=$(portless topology status --state "$state" --json | "$python" -c "
import json, sys
print(next(i['address'] for i in json.load(sys.stdin)['intercepts'] if i['tunneler'] == 'support-agent' and i['service'] == 'llm'))")
echo
echo "\$ openai_agent.py chat http://$address/v1 auto 'Summarize our VPN outage in one sentence'   # OpenAI SDK as 'support-agent'"
"$python" "$here/openai_agent.py" chat "http://$address/v1" auto "Summarize our VPN outage in one sentence"
echo
echo "\$ openai_agent.py chat http://$address/v1 auto 'Email jane@example.com her card 4111 1111 1111 1111'   # personal data: kept on a private model"
"$python" "$here/openai_agent.py" chat "http://$address/v1" auto "Email jane@example.com her card 4111 1111 1111 1111"
sleep 1  # usage reaches the controller within a second
echo
echo "\$ portless usage --by identity"
portless usage --by identity --profile "$state/profile.json"
