#!/bin/sh
# The fleet view's own cost with many hosts: HOSTS hosts reached through the local transport
# (the dashboard binary itself, as the tests do) over LAUNCHERS real launchers with AGENTS
# heartbeating agents each, so that every host's stream sends about a line a second. The view
# runs in tmux; its CPU (utime + stime from /proc) and memory (VmRSS, VmHWM) are read over SECS
# seconds, and so are those of its stream children (on real hosts these run far away).
#
#   cargo build --release -p agentvisor-dashboard -p agentvisor-launcher
#   sh bench/fleet-view.sh                      # HOSTS=20 LAUNCHERS=4 AGENTS=10 SECS=60
set -eu
BIN=${BIN:-target/release}
LAUNCHER=${LAUNCHER:-$BIN/agentvisor-launcher}
DASH=$(realpath "${DASH:-$BIN/agentvisor-dashboard}")
LAUNCHER=$(realpath "$LAUNCHER")
HOSTS=${HOSTS:-20}
LAUNCHERS=${LAUNCHERS:-4}
AGENTS=${AGENTS:-10}
SECS=${SECS:-60}
dir=$(mktemp -d)
session="fleetbench$$"
pids=""
cleanup() {
    tmux kill-session -t "$session" 2>/dev/null || true
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

printf '#!/bin/sh\necho READY=1 >&3\nwhile :; do echo WATCHDOG=1 >&3; sleep 1; done\n' > "$dir/beat.sh"
chmod +x "$dir/beat.sh"
for l in $(seq 1 "$LAUNCHERS"); do
    mkdir -p "$dir/l$l"
    for a in $(seq 1 "$AGENTS"); do
        printf '[[agent]]\nname = "a%s"\ncommand = "%s"\nheartbeat_timeout = "5s"\n\n' "$a" "$dir/beat.sh"
    done > "$dir/l$l/agents.toml"
    "$LAUNCHER" --db "$dir/l$l/state.db" --config "$dir/l$l/agents.toml" 2> "$dir/l$l/err" &
    pids="$pids $!"
done
printf 'command = "%s {args}"\n' "$DASH" > "$dir/fleet.toml"
for h in $(seq 1 "$HOSTS"); do
    l=$(( (h - 1) % LAUNCHERS + 1 ))
    printf '\n[[host]]\nname = "host%02d"\ndb = "%s"\n' "$h" "$dir/l$l/state.db" >> "$dir/fleet.toml"
done
sleep 3
tmux new-session -d -s "$session" -x 120 -y 40 "$DASH --fleet $dir/fleet.toml"
view=$(tmux list-panes -t "$session" -F '#{pane_pid}')
# Until every host is up (bounded: a minute).
i=0
while [ "$(tmux capture-pane -p -t "$session" | grep -c ' up  ')" -lt "$HOSTS" ] && [ $i -lt 600 ]; do
    sleep 0.1; i=$((i + 1))
done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
children() { pgrep -P "$view" | tr '\n' ' '; }
sum_cpu() { t=0; for p in $(children); do t=$((t + $(cpu "$p"))); done; echo $t; }
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
v0=$(cpu "$view"); s0=$(sum_cpu)
sleep "$SECS"
v1=$(cpu "$view"); s1=$(sum_cpu)
n=$(children | wc -w)
s_rss=0; for p in $(children); do s_rss=$((s_rss + $(kb "$p" VmRSS))); done
echo "hosts $HOSTS (rows up: $(tmux capture-pane -p -t "$session" | grep -c ' up  ')), launchers $LAUNCHERS x $AGENTS agents, ${SECS}s"
awk -v d=$((v1 - v0)) -v t="$ticks" -v s="$SECS" 'BEGIN {printf "fleet view CPU: %.2f %% of a core\n", 100 * d / t / s}'
echo "fleet view memory: VmRSS $(kb "$view" VmRSS) KiB, VmHWM $(kb "$view" VmHWM) KiB, threads $(kb "$view" Threads)"
awk -v d=$((s1 - s0)) -v t="$ticks" -v s="$SECS" -v n="$n" \
    'BEGIN {printf "stream processes: %d, CPU %.2f %% of a core together (%.3f %% each)\n", n, 100 * d / t / s, 100 * d / t / s / n}'
echo "stream processes memory: VmRSS $s_rss KiB together ($((s_rss / n)) KiB each)"
