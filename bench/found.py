#!/usr/bin/env python3
"""Which planted secrets a tool's report found.

usage: found.py TOOL REPORT PLANTED_TSV

TOOL is strata | trivy | betterleaks | kingfisher; REPORT its JSON (or JSON-lines) output;
PLANTED_TSV has one planted secret a line: id, image path, secret. A secret counts as found
when the tool reports a finding in that file (the path ends with the planted path, inside
archives too) that names the secret: its value (or strata's secret_sha256 of it), or, for
tools that mask values, a rule id of the same kind. Prints "found/planted" then the ids,
found ones plain, missed ones with a leading '-'.
"""
import hashlib
import json
import re
import sys

# Rule-id hints for tools that mask the value (Trivy): planted id -> regex over the rule id.
HINTS = {
    "aws-access-key": r"access.?key.?id|aws-access",
    "aws-secret-key": r"secret.?access|aws-secret",
    "github-pat": r"github", "github-in-js": r"github",
    "slack-bot": r"slack", "private-key": r"private.?key",
    "gitlab-in-24MiB-file": r"gitlab", "npm-in-gz": r"npm", "npm-npmrc": r"npm",
    "stripe-in-py": r"stripe",
}


def load(path):
    text = open(path, encoding="utf-8", errors="replace").read().strip()
    if not text:
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def findings(tool, doc):
    """(path, rule id, everything else as text) of every finding."""
    out = []
    if tool == "strata":
        for f in doc.get("findings", []):
            out.append((f.get("path") or "", f.get("rule_id", ""), json.dumps(f)))
    elif tool == "trivy":
        for r in doc.get("Results", []) or []:
            for s in r.get("Secrets", []) or []:
                out.append((r.get("Target", ""), s.get("RuleID", ""), json.dumps(s)))
    elif tool == "betterleaks":
        items = doc if isinstance(doc, list) else doc.get("findings", [])
        for f in items:
            path = f.get("File") or (f.get("location") or {}).get("path", "")
            out.append((path, f.get("RuleID") or f.get("rule_id", ""), json.dumps(f)))
    elif tool == "kingfisher":
        items = doc if isinstance(doc, list) else doc.get("findings", doc.get("matches", []))
        for f in items:
            blob = json.dumps(f)
            paths = re.findall(r'"(?:path|file|location)"\s*:\s*"([^"]+)"', blob)
            rule = re.findall(r'"(?:rule_id|id|name)"\s*:\s*"([^"]+)"', blob)
            out.append((" ".join(paths), " ".join(rule), blob))
    return out


def main():
    tool, report, planted = sys.argv[1:4]
    try:
        got = findings(tool, load(report))
    except (OSError, ValueError, AttributeError) as e:
        print(f"unreadable report ({e.__class__.__name__})")
        return
    rows = [line.rstrip("\n").split("\t") for line in open(planted) if line.strip()]
    marks = []
    for pid, path, secret in rows:
        want = path.lstrip("/")
        sha = hashlib.sha256(secret.encode()).hexdigest()
        hint = HINTS.get(pid)
        hit = False
        for fpath, rule, blob in got:
            if not fpath.replace("\\", "/").rstrip("/").endswith(want) and want not in fpath:
                continue
            if secret in blob or sha in blob or (hint and re.search(hint, rule, re.I)):
                hit = True
                break
        marks.append(pid if hit else "-" + pid)
    print(f"{sum(not m.startswith('-') for m in marks)}/{len(rows)} " + " ".join(marks))


if __name__ == "__main__":
    main()
