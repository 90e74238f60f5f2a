#!/bin/sh
# Pretends to be an LLM agent: reports the model in use, running token totals and cost (in
# the agent's currency unit), what it is doing, and now and then an error.
fd=${AGENTVISOR_NOTIFY_FD:-3}
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
tokens_in=0
tokens_out=0
n=0
echo "X_MODEL=demo-llm-8b" >&"$fd"
while :; do
    n=$((n + 1))
    tin=$(( 200 + $(rand) % 1800 ))
    tout=$(( 50 + $(rand) % 600 ))
    tokens_in=$((tokens_in + tin))
    tokens_out=$((tokens_out + tout))
    # Price: 0.5 per million input tokens, 1.5 per million output tokens, in millionths.
    micro=$(( tokens_in / 2 + tokens_out * 3 / 2 ))
    cost=$(printf '%d.%06d' $((micro / 1000000)) $((micro % 1000000)))
    printf 'WATCHDOG=1\nX_TASK=answering question %d\nX_TOKENS_IN=%d\nX_TOKENS_OUT=%d\nX_COST=%s\nX_METRIC_LATENCY_MS=%d\n' \
        "$n" "$tokens_in" "$tokens_out" "$cost" $(( 300 + $(rand) % 2000 )) >&"$fd"
    echo "question $n: $tin tokens in, $tout out"
    if [ $(( $(rand) % 10 )) -eq 0 ]; then
        echo "X_ERROR=upstream timeout on question $n" >&"$fd"
        echo "upstream timeout on question $n" >&2
    fi
    sleep 2
done
