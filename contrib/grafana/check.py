#!/usr/bin/env python3
"""Runs every PromQL query of a Grafana dashboard, and every rule loaded in Prometheus, through a
real Prometheus' HTTP API.

    contrib/grafana/check.py http://127.0.0.1:9090 contrib/grafana/agentvisor-fleet.json

Grafana's variables are substituted the way Grafana does with "All" selected: a variable with an
`allValue` becomes that value, one without becomes the regex alternation of all its values (which
its own query, run here too, must return). Built-ins ($__interval, $__rate_interval, $__range, ...)
become what Grafana would send for a short time range. Fails when Prometheus refuses a query, when
a query returns nothing (except those in ALLOWED_EMPTY), when a rule's evaluation reports an error,
or when a metric name the dashboard or the rules use is not among the series Prometheus scraped.
Empty results are retried until the deadline (CHECK_TIMEOUT_S, 60 s): counters need two samples
before rate() answers. Standard library only.
"""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# "panel title/refId" -> why an empty result is right in a working setup. None today: every
# panel has data once an agent reports tokens and cost, a probe runs, an [[alert]] fires and a
# scheduled run fails (as in the exporter's test); the alert panels count with `or vector(0)`
# or over all severities, so they have data when nothing fires too.
ALLOWED_EMPTY = {}

# What Grafana sends for the built-ins when the panel covers RANGE_S seconds, STEP_S per point,
# against a datasource scraped every SCRAPE_S seconds ($__rate_interval = max(4 scrape
# intervals, interval + scrape interval)).
RANGE_S = 120
STEP_S = 2
SCRAPE_S = int(os.environ.get("CHECK_SCRAPE_INTERVAL_S", "1"))
BUILTINS = {
    "__interval": f"{STEP_S}s",
    "__interval_ms": str(STEP_S * 1000),
    "__rate_interval": f"{max(4 * SCRAPE_S, STEP_S + SCRAPE_S)}s",
    "__range": f"{RANGE_S}s",
    "__range_s": str(RANGE_S),
    "__range_ms": str(RANGE_S * 1000),
}
# $name, ${name}, ${name:format} and the old [[name]].
VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)(?::[\w]+)?\]\]")
METRIC = re.compile(r"\bagentvisor_[a-z0-9_]+\b")


class Refused(Exception):
    """Prometheus answered with an error: the query is wrong, retrying will not help."""


class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        url = f"{self.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                raise Refused(f"HTTP {e.code} for {path}") from None
        if body.get("status") != "success":
            raise Refused(f"{body.get('errorType', '?')}: {body.get('error', body)}")
        return body["data"]

    def instant(self, expr):
        return self.get("/api/v1/query", query=expr)["result"]

    def range(self, expr):
        now = time.time()
        return self.get("/api/v1/query_range", query=expr, start=now - RANGE_S, end=now, step=STEP_S)[
            "result"
        ]


def substitute(text, values):
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        raise Refused(f"unknown variable ${name}")

    return VARIABLE.sub(one, text)


def variable_query(var):
    q = var.get("query", "")
    return q.get("query", "") if isinstance(q, dict) else q


def variable_values(prom, query):
    """The values Grafana's Prometheus datasource lists for a variable query."""
    m = re.fullmatch(r"\s*label_values\((?:(.*),\s*)?(\w+)\)\s*", query)
    if m:
        selector, label = m.group(1), m.group(2)
        if not selector:
            return sorted(prom.get(f"/api/v1/label/{label}/values"))
        series = prom.get("/api/v1/series", **{"match[]": selector, "start": time.time() - RANGE_S})
        return sorted({s[label] for s in series if label in s})
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query)
    if m:
        return [json.dumps(r["metric"]) for r in prom.instant(m.group(1))]
    m = re.fullmatch(r"\s*metrics\((.*)\)\s*", query)
    if m:
        return [n for n in prom.get("/api/v1/label/__name__/values") if re.search(m.group(1), n)]
    raise Refused(f"variable query {query!r} is not one Grafana's Prometheus datasource runs")


def resolve_variables(prom, dash):
    """Each templating variable's value with "All" selected, in order (a query may use earlier ones)."""
    values = dict(BUILTINS)
    for var in dash.get("templating", {}).get("list", []):
        name, kind = var["name"], var.get("type")
        if kind == "datasource":
            values[name] = var.get("query", "prometheus")
            continue
        if kind == "query":
            query = substitute(variable_query(var), values)
            options = variable_values(prom, query)
            if not options:
                return None, f"variable ${name}: {query} lists no values"
        elif kind == "custom":
            options = [o.strip() for o in variable_query(var).split(",") if o.strip()]
        else:
            options = [str(var.get("current", {}).get("value") or variable_query(var))]
        if var.get("includeAll") and var.get("allValue"):
            values[name] = var["allValue"]
        elif var.get("includeAll") or var.get("multi"):
            values[name] = "(" + "|".join(re.escape(o) for o in options) + ")"
        else:
            values[name] = options[0]
    return values, None


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def targets(dash):
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("hide") or not t.get("expr"):
                continue
            where = f"{p.get('title', p.get('id'))}/{t.get('refId', '?')}"
            # Grafana runs a range query unless only instant is asked for, and both when both are.
            instant = [True] if t.get("instant") else []
            yield where, t["expr"], instant + ([False] if t.get("range", not instant) else [])


def rules_problems(prom):
    """(problems, rule count, metric names used, whether every rule has been evaluated)."""
    problems, names, count, evaluated = [], set(), 0, True
    for group in prom.get("/api/v1/rules")["groups"]:
        for rule in group["rules"]:
            count += 1
            name = rule.get("name", "?")
            names.update(METRIC.findall(rule["query"]))
            if rule.get("health") == "err":
                problems.append(f"rule {name}: {rule.get('lastError')}")
            if rule.get("lastEvaluation", "").startswith("0001-"):
                evaluated = False
            try:
                prom.instant(rule["query"])
            except Refused as e:
                problems.append(f"rule {name}: {e}")
    return problems, count, names, evaluated


def attempt(prom, dash):
    """(fatal problems, problems that may clear with more samples, summary)."""
    values, empty_var = resolve_variables(prom, dash)
    if values is None:
        return [], [empty_var], None
    fatal, waiting, names, queries, allowed = [], [], set(), 0, []
    for where, expr, modes in targets(dash):
        queries += 1
        try:
            query = substitute(expr, values)
            results = [prom.instant(query) if instant else prom.range(query) for instant in modes]
        except Refused as e:
            fatal.append(f"{where}: {e}\n    {expr}")
            continue
        names.update(METRIC.findall(expr))
        if all(results):
            continue
        if where in ALLOWED_EMPTY:
            allowed.append(where)
        else:
            waiting.append(f"{where}: no data for {query}")
    problems, count, used, evaluated = rules_problems(prom)
    fatal.extend(problems)
    names.update(used)
    if not evaluated:
        waiting.append("not every rule has been evaluated yet")
    scraped = set(prom.get("/api/v1/label/__name__/values"))
    waiting.extend(f"metric {n} is used but Prometheus has no such series" for n in sorted(names - scraped))
    summary = (queries, len(dash.get("templating", {}).get("list", [])), count, allowed)
    return fatal, waiting, summary


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    prom = Prometheus(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        dash = json.load(f)
    deadline = time.monotonic() + float(os.environ.get("CHECK_TIMEOUT_S", "60"))
    while True:
        try:
            fatal, waiting, summary = attempt(prom, dash)
        except Refused as e:
            fatal, waiting, summary = [str(e)], [], None
        except OSError as e:
            fatal, waiting, summary = [], [f"Prometheus at {prom.url}: {e}"], None
        if fatal or (waiting and time.monotonic() > deadline):
            print(f"grafana/check.py: FAILED: {sys.argv[2]} against {prom.url}")
            for p in fatal + waiting:
                print(f"  {p}")
            return 1
        if not waiting:
            break
        time.sleep(1)
    queries, variables, rules, allowed = summary
    print(
        f"grafana/check.py: OK: {queries} dashboard queries ({variables} variables set to All) "
        f"and {rules} rule expressions evaluated without error"
        + (f"; allowed empty: {', '.join(allowed)}" if allowed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
