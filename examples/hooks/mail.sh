#!/bin/sh
# Mails the event through sendmail, if the machine has one.
#
#   [[hook]]
#   name = "mail"
#   on = ["crash_loop", "supervisor_lost", "launcher_crashed"]
#   command = "examples/hooks/mail.sh"
#   env = { MAIL_TO = "ops@example.com" }
#   min_interval = "15m"
#
# The whole event, as the JSON object the launcher writes to stdin, is the mail's last line.
set -eu
: "${MAIL_TO:?set MAIL_TO in the hook's env}"
sendmail=$(command -v sendmail || echo /usr/sbin/sendmail)
if [ ! -x "$sendmail" ]; then
    echo "no sendmail on this machine; not mailed: $AGENTVISOR_EVENT_KIND" >&2
    exit 1
fi
agent=${AGENTVISOR_EVENT_AGENT:-launcher}
event=$(cat)
{
    printf 'To: %s\n' "$MAIL_TO"
    printf 'Subject: [agentvisor %s] %s: %s\n' "$AGENTVISOR_EVENT_SEVERITY" "$agent" "$AGENTVISOR_EVENT_KIND"
    printf 'Content-Type: text/plain; charset=utf-8\n\n'
    printf '%s\n\n' "$AGENTVISOR_EVENT_MESSAGE"
    printf 'time: %s\nhost: %s\ndatabase: %s\n\n%s\n' "$AGENTVISOR_EVENT_TIME" "$(hostname)" "$AGENTVISOR_DB" "$event"
} | "$sendmail" -t
