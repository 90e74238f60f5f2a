#!/bin/sh
# A worker that reports what it does: a task counter, its queue depth, and heartbeats, all
# through the notify pipe on descriptor $AGENTVISOR_NOTIFY_FD (3).
fd=${AGENTVISOR_NOTIFY_FD:-3}
done_count=0
rand() { od -An -N1 -tu1 /dev/urandom | tr -d ' '; }
while :; do
    done_count=$((done_count + 1))
    depth=$(( $(rand) % 12 ))
    printf 'WATCHDOG=1\nX_TASK=job %d\nX_METRIC_TASKS_DONE=%d\nX_METRIC_QUEUE_DEPTH=%d\n' \
        "$done_count" "$done_count" "$depth" >&"$fd"
    echo "finished job $done_count, $depth waiting"
    sleep 1
done
