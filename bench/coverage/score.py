#!/usr/bin/env python3
"""Scores one coverage set: which planted example files strata reported as deleted.

usage: score.py [--misses] SET_NAME SET_DIR REPORT.json

Prints one line per set: all examples, and the "secrets" subset (files not tagged
`.public.` or `.placeholder.` in their name), each as found/total and a fraction.
With --misses, lists the uncovered secret examples.
"""
import json
import os
import sys


def main(argv):
    show_misses = "--misses" in argv
    argv = [a for a in argv if a != "--misses"]
    if len(argv) != 3:
        sys.exit(__doc__)
    name, directory, report = argv
    files = sorted(f for f in os.listdir(directory) if os.path.isfile(os.path.join(directory, f)))
    with open(report, encoding="utf-8") as fh:
        doc = json.load(fh)
    prefix = f"/planted/{name}/"
    covered = set()
    for finding in doc.get("findings", []):
        path = finding.get("path") or ""
        if path.startswith(prefix) and finding.get("status") == "deleted":
            covered.add(path[len(prefix):])
    not_secret = lambda f: ".public." in f or ".placeholder." in f
    secrets = [f for f in files if not not_secret(f)]
    hit_all = sum(f in covered for f in files)
    hit_sec = sum(f in covered for f in secrets)
    frac = lambda a, b: a / b if b else 0.0
    print(f"{name}: all {hit_all}/{len(files)} = {frac(hit_all, len(files)):.2f}; "
          f"secrets {hit_sec}/{len(secrets)} = {frac(hit_sec, len(secrets)):.2f}")
    if show_misses:
        for f in secrets:
            if f not in covered:
                print(f"  miss {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
