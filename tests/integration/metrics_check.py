#!/usr/bin/env python3
"""Checks a scrape of a tether server's /metrics, and what the monitoring
examples refer to.

  metrics_check.py exposition SCRAPE
      SCRAPE parses as the Prometheus text format 0.0.4: HELP and TYPE
      before a family's samples, each family once, names and label values
      as the format spells them (escapes \\\\ \\" \\n only), counters named
      *_total, histograms with cumulative _bucket{le} series ending at +Inf,
      _count equal to the +Inf bucket, and a _sum. Prints the family names.

  metrics_check.py references SCRAPE DASHBOARD RULES...
      Every metric that the Grafana dashboard's queries (and variables) and
      the rule files' expressions name is a family in SCRAPE (a _bucket,
      _sum or _count of a histogram family counts as that family).

Exits 1 with "FAIL: ..." on the first problem.
"""
import json
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE = re.compile(r"^(" + NAME + r")(\{(.*)\})? (\S+)( -?[0-9]+)?$")
LABEL_PAIR = re.compile(r'(' + LABEL + r')="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "le", "inf", "nan",
}


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def number(text, where):
    if text in ("+Inf", "-Inf", "NaN"):
        return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[text]
    try:
        return float(text)
    except ValueError:
        fail("%s: %r is not a number" % (where, text))


def labels_of(text, where):
    """The label pairs of a sample, in order, checked."""
    pairs, pos = [], 0
    while pos < len(text):
        match = LABEL_PAIR.match(text, pos)
        if match is None:
            fail("%s: malformed labels {%s}" % (where, text))
        pairs.append((match.group(1), match.group(2)))
        pos = match.end()
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        fail("%s: a label repeated" % where)
    return pairs


def parse(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}."""
    families, current = {}, None
    if text and not text.endswith("\n"):
        fail("the text does not end with a newline")
    for number_, line in enumerate(text.splitlines(), 1):
        where = "line %d" % number_
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                fail("%s: malformed %s line" % (where, parts[1]))
            name = parts[2]
            family = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if family["samples"]:
                fail("%s: %s after the samples of %s" % (where, parts[1], name))
            if parts[1] == "HELP":
                if family["help"] is not None:
                    fail("%s: second HELP for %s" % (where, name))
                if re.search(r"\\[^\\n]|\\$", parts[3]):
                    fail("%s: HELP of %s has an escape other than \\\\ and \\n" % (where, name))
                family["help"] = parts[3]
            else:
                if family["type"] is not None or parts[3] not in TYPES:
                    fail("%s: second or unknown TYPE for %s" % (where, name))
                family["type"] = parts[3]
            current = name
            continue
        if line.startswith("#") or line == "":
            fail("%s: unexpected line %r" % (where, line))
        match = SAMPLE.match(line)
        if match is None:
            fail("%s: malformed sample %r" % (where, line))
        name, labels = match.group(1), labels_of(match.group(3) or "", where)
        value = number(match.group(4), where)
        family_name = current
        if family_name is None or not (
                name == family_name or
                (families[family_name]["type"] == "histogram" and
                 name in (family_name + "_bucket", family_name + "_sum", family_name + "_count"))):
            fail("%s: sample %s outside its family (HELP and TYPE first)" % (where, name))
        families[family_name]["samples"].append((name, labels, value))
    for name, family in families.items():
        if family["type"] is None or family["help"] is None:
            fail("%s has no TYPE or no HELP" % name)
        if family["type"] == "counter" and not name.endswith("_total"):
            fail("counter %s is not named *_total" % name)
        if family["type"] == "counter" and any(v < 0 for _, _, v in family["samples"]):
            fail("counter %s is negative" % name)
        if family["type"] == "histogram":
            check_histogram(name, family["samples"])
    return families


def check_histogram(name, samples):
    series = {}
    for sample, labels, value in samples:
        key = tuple(pair for pair in labels if pair[0] != "le")
        entry = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sample == name + "_bucket":
            le = [v for n, v in labels if n == "le"]
            if len(le) != 1:
                fail("%s_bucket%s has no le" % (name, key))
            entry["buckets"].append((number(le[0], name), value))
        elif sample == name + "_sum":
            entry["sum"] = value
        elif sample == name + "_count":
            entry["count"] = value
        else:
            fail("%s: sample %s in a histogram" % (name, sample))
    for key, entry in series.items():
        buckets = entry["buckets"]
        bounds = [le for le, _ in buckets]
        counts = [c for _, c in buckets]
        if not buckets or bounds[-1] != math.inf:
            fail("%s%s: the last bucket is not le=\"+Inf\"" % (name, key))
        if bounds != sorted(set(bounds)):
            fail("%s%s: bucket bounds not strictly increasing" % (name, key))
        if counts != sorted(counts):
            fail("%s%s: buckets not cumulative" % (name, key))
        if entry["count"] != counts[-1]:
            fail("%s%s: _count %s is not the +Inf bucket %s" % (name, key, entry["count"], counts[-1]))
        if entry["sum"] is None:
            fail("%s%s: no _sum" % (name, key))


def metric_names(expr):
    """The metric names a PromQL expression refers to."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                       # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                      # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)                           # Grafana variables
    names = set()
    for match in re.finditer(NAME, expr):
        word = match.group(0)
        before = expr[match.start() - 1] if match.start() > 0 else ""
        after = expr[match.end():].lstrip()[:1]
        if after == "(" or word.lower() in PROMQL_WORDS or before.isdigit() or before == ".":
            continue
        names.add(word)
    return names


def dashboard_queries(path):
    with open(path) as f:
        dashboard = json.load(f)
    queries = []
    for panel in dashboard.get("panels", []):
        targets = [t.get("expr", "") for t in panel.get("targets", [])]
        if not targets or not all(targets):
            fail("%s: panel %r has no query" % (path, panel.get("title")))
        queries += [(path + ": " + panel["title"], t) for t in targets]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            inner = re.match(r"label_values\((.*),\s*\w+\)$", variable["definition"])
            queries.append((path + ": variable " + variable["name"],
                            inner.group(1) if inner else variable["definition"]))
    return queries


def rule_queries(path):
    with open(path) as f:
        return [(path, m.group(1)) for m in re.finditer(r"^\s*expr:\s*(.+)$", f.read(), re.M)]


def main(argv):
    if len(argv) == 3 and argv[1] == "exposition":
        with open(argv[2]) as f:
            for name in sorted(parse(f.read())):
                print(name)
        return
    if len(argv) >= 4 and argv[1] == "references":
        with open(argv[2]) as f:
            families = parse(f.read())
        exported = set(families)
        for name, family in families.items():
            if family["type"] == "histogram":
                exported |= {name + "_bucket", name + "_sum", name + "_count"}
        queries = dashboard_queries(argv[3])
        for path in argv[4:]:
            queries += rule_queries(path)
        referred = set()
        for where, expr in queries:
            names = metric_names(expr)
            if not names:
                fail("%s: no metric in %r" % (where, expr))
            missing = names - exported
            if missing:
                fail("%s: %s not exported (query %r)" % (where, ", ".join(sorted(missing)), expr))
            referred |= names
        print("%d queries refer to %d metrics, all exported: %s" %
              (len(queries), len(referred), " ".join(sorted(referred))))
        return
    fail("usage: metrics_check.py exposition SCRAPE | references SCRAPE DASHBOARD RULES...")


if __name__ == "__main__":
    main(sys.argv)
