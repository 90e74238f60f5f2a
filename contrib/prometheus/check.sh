#!/bin/sh
# Proves the files of contrib/prometheus and contrib/grafana against a running exporter:
# `promtool check rules` on the alerting rules, `promtool check metrics` on a scrape, then a
# real Prometheus (Debian's `prometheus` package) scraping the exporter every second with the
# rules loaded: the target's `up` and one `agent`-labelled series queried back through its
# HTTP API, then every query of the Grafana dashboard and every rule expression run through
# that API (contrib/grafana/check.py). Exit 0 when all passed, 1 when not, 77 (skipped) when
# prometheus, promtool, curl or python3 is missing. CHECK_DASHBOARD names another dashboard file.
#
#   agentvisor-dashboard serve --listen 127.0.0.1:9464 &
#   contrib/prometheus/check.sh 127.0.0.1:9464
set -eu
target=${1:-127.0.0.1:9464}
limit=${CHECK_TIMEOUT_S:-60}
here=$(cd "$(dirname "$0")" && pwd)
for tool in prometheus promtool curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "check.sh: skipped: $tool is not installed (Debian: apt-get install prometheus curl python3)"
        exit 77
    fi
done

dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

if ! out=$(promtool check rules "$here/agentvisor-rules.yml" 2>&1); then
    echo "check.sh: FAILED: promtool check rules $here/agentvisor-rules.yml"; echo "$out"
    exit 1
fi
echo "check.sh: promtool check rules: $(echo "$out" | grep -o 'SUCCESS.*')"
# check metrics lints the exposition (names, units, HELP) and exits 0 with no output when clean.
out="no answer"
if ! curl -sf "http://$target/metrics" -o "$dir/metrics" ||
    ! out=$(promtool check metrics <"$dir/metrics" 2>&1) || [ -n "$out" ]; then
    echo "check.sh: FAILED: promtool check metrics on http://$target/metrics"; echo "$out"
    exit 1
fi
echo "check.sh: promtool check metrics: no problems in http://$target/metrics"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp "$here/agentvisor-rules.yml" "$dir/"
cat >"$dir/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - agentvisor-rules.yml
scrape_configs:
  - job_name: agentvisor
    static_configs:
      - targets: ["$target"]
CONF
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
pid=$!

# Prints "series value" lines of an instant query's result.
query() {
    curl -sf -G "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
        python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    m = dict(r["metric"]); name = m.pop("__name__", "")
    labels = ",".join(k + "=\"" + v + "\"" for k, v in sorted(m.items()))
    print(name + "{" + labels + "} " + r["value"][1])
' 2>/dev/null || true
}

deadline=$(($(date +%s) + limit))
up= agent=
while [ "$(date +%s)" -lt "$deadline" ]; do
    up=$(query 'up{job="agentvisor"} == 1')
    agent=$(query 'agentvisor_agent_up{job="agentvisor"}')
    if [ -n "$up" ] && [ -n "$agent" ]; then break; fi
    sleep 1
done
if [ -z "$up" ] || [ -z "$agent" ]; then
    echo "check.sh: FAILED: Prometheus did not return up == 1 and agentvisor_agent_up for $target within ${limit}s"
    echo "up: ${up:-none}"; echo "agentvisor_agent_up: ${agent:-none}"
    echo "--- prometheus log (tail) ---"; tail -n 20 "$dir/prometheus.log"
    exit 1
fi
echo "$up"
echo "$agent"
dashboard=${CHECK_DASHBOARD:-$here/../grafana/agentvisor-fleet.json}
left=$((deadline - $(date +%s)))
if ! CHECK_TIMEOUT_S=$((left > 10 ? left : 10)) CHECK_SCRAPE_INTERVAL_S=1 \
    python3 "$here/../grafana/check.py" "http://127.0.0.1:$port" "$dashboard"; then
    echo "check.sh: FAILED: the dashboard's queries or the rules (above)"
    exit 1
fi
rules=$(curl -sf "http://127.0.0.1:$port/api/v1/rules" |
    python3 -c 'import json, sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
echo "check.sh: OK: $(prometheus --version 2>&1 | head -n 1) scraped $target, with $rules alerting rules loaded"
