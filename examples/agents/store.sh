#!/bin/sh
# A slow starter: loads its "index" for a few seconds, then tells the launcher it is ready.
# Agents that depend on it (worker, assistant) start only after READY=1.
# Messages go to the notify pipe, whose descriptor number is in $AGENTVISOR_NOTIFY_FD (3).
fd=${AGENTVISOR_NOTIFY_FD:-3}
echo "STATUS=loading index" >&"$fd"
for step in 1 2 3 4; do
    echo "loading index part $step/4"
    sleep 1
done
echo "READY=1" >&"$fd"
echo "STATUS=serving" >&"$fd"
docs=1000
while :; do
    docs=$((docs + 7))
    printf 'WATCHDOG=1\nX_METRIC_DOCUMENTS=%d\n' "$docs" >&"$fd"
    sleep 2
done
