#!/bin/sh
# Posts the event to a Slack- or Discord-compatible incoming webhook with curl.
#
#   [[hook]]
#   name = "chat"
#   on = ["crashed", "crash_loop", "heartbeat_missed", "hook_failed"]
#   severity = "warning"
#   command = "examples/hooks/webhook.sh"
#   env = { WEBHOOK_URL = "https://hooks.example.com/services/T000/B000/XXXX" }
#   timeout = "10s"
#   min_interval = "5m"
#
# Slack reads the "text" field, Discord the "content" field; both are sent. The JSON is built
# with python3 when present, so quotes and newlines in the message cannot break it.
set -eu
: "${WEBHOOK_URL:?set WEBHOOK_URL in the hook's env}"
agent=${AGENTVISOR_EVENT_AGENT:-launcher}
text="[$AGENTVISOR_EVENT_SEVERITY] $agent: $AGENTVISOR_EVENT_KIND at $AGENTVISOR_EVENT_TIME: $AGENTVISOR_EVENT_MESSAGE"
if command -v python3 >/dev/null 2>&1; then
    body=$(TEXT="$text" python3 -c 'import json, os; t = os.environ["TEXT"]; print(json.dumps({"text": t, "content": t}))')
else
    esc=$(printf '%s' "$text" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\r\t' '   ')
    body="{\"text\": \"$esc\", \"content\": \"$esc\"}"
fi
curl --fail --silent --show-error --max-time 8 \
    -H 'Content-Type: application/json' --data "$body" "$WEBHOOK_URL"
