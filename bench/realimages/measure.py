#!/usr/bin/env python3
"""Reads a strata JSON report and prints the false-positive figure of issue 12 item 5: findings at
medium or above outside the application's own files, and (with a planted.json from plant.py)
whether every planted secret is still found at its rule severity.

The application's own files are those under APP_ROOT (default /app/) except vendored dependency
trees (node_modules, pylibs). usage: measure.py REPORT.json [PLANTED.json] [APP_ROOT]
"""
import json
import sys
from collections import Counter

RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
VENDORED = ("/node_modules/", "/pylibs/")


def is_app_file(path, root):
    return bool(path) and path.startswith(root) and not any(v in path for v in VENDORED)


def main():
    report = json.load(open(sys.argv[1]))
    planted = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else []
    root = sys.argv[3] if len(sys.argv) > 3 else "/app/"
    findings = report["findings"]
    noisy = [f for f in findings
             if RANK[f["severity"]] >= RANK["medium"] and not is_app_file(f.get("path"), root)
             and f.get("status") != "config"]
    print(f"findings: {len(findings)} total; at medium+ outside app files: {len(noisy)}")
    for (rule, sev, path), n in sorted(Counter(
            (f["rule_id"], f["severity"], f.get("path")) for f in noisy).items()):
        print(f"  {sev:8} {rule:32} {path}  x{n}")
    missing = 0
    for p in planted:
        hits = [f for f in findings if f.get("path") == p["path"]
                and (p["secret_sha256"] is None or f.get("secret_sha256") == p["secret_sha256"])
                and (p["secret_sha256"] is not None or f["rule_id"] == p["rule"])]
        ok = [f for f in hits if f["severity"] == f.get("rule_severity", f["severity"])
              and RANK[f["severity"]] >= RANK["medium"]]
        state = "found" if ok else ("CAPPED" if hits else "MISSING")
        missing += not ok
        got = ", ".join(f"{f['rule_id']}={f['severity']}/{f['status']}" for f in hits) or "-"
        print(f"  planted {p['path']} {p['rule']}: {state} ({got})")
    if planted:
        print(f"planted secrets found at rule severity: {len(planted) - missing}/{len(planted)}")


if __name__ == "__main__":
    main()
