#!/bin/sh
# Crashes now and then: runs 5 to 20 seconds, then fails. The launcher restarts it with
# growing delays, and shows each crash as an error event.
fd=${AGENTVISOR_NOTIFY_FD:-3}
life=$(( 5 + $(od -An -N1 -tu1 /dev/urandom | tr -d ' ') % 16 ))
echo "up for about ${life}s this time"
i=0
while [ "$i" -lt "$life" ]; do
    echo "WATCHDOG=1" >&"$fd"
    i=$((i + 1))
    sleep 1
done
echo "simulated failure after ${life}s" >&2
echo "X_ERROR=simulated failure after ${life}s" >&"$fd"
exit 1
