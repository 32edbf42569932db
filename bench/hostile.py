#!/usr/bin/env python3
"""Re-checks issue 9's hostile inputs against a release build of strata.

usage: bench/hostile.py [--bin PATH] [--gen PATH] [--dir DIR] [ROW ...]

Has the image generator (`corpus hostile ROW DIR/ROW`, the Rust crate
crates/imagegen; --gen names a built `corpus` example, else it is built with
cargo) write each input of issue 9 ("Memory and time blow up", "Other
defects", "Layer semantics") in DIR (default /tmp/strata-hostile, reused),
runs strata on it under /usr/bin/time -v and prints one line per run: wall
and CPU seconds, peak RSS, exit code, findings, and the first error
diagnostic. No archive is written here: this script only runs and judges.
A row FAILs when it takes 10 s or more of CPU time (user + system: wall time
on a shared machine measures the other jobs too), more than 200 MB, exits
0 although something was not read, or misses what it must find.
Timings and sizes belong here, not in the test suite (tests/it/hostile.rs
holds the small, fast versions).
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANARY_RULES = os.path.join(ROOT, "tests/it/canary.toml")


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------

def run(binary, args, timeout=600):
    cmd = ["/usr/bin/time", "-v", binary] + args
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    err = p.stderr.decode("utf-8", "replace")
    stats = {}
    for key, pat in (("rss_kb", r"Maximum resident set size \(kbytes\): (\d+)"),
                     ("user", r"User time \(seconds\): ([\d.]+)"),
                     ("sys", r"System time \(seconds\): ([\d.]+)"),
                     ("wall", r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")):
        m = re.search(pat, err)
        stats[key] = m.group(1) if m else "0"
    parts = [float(x) for x in stats["wall"].split(":")]
    wall = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    return {"code": p.returncode, "out": p.stdout, "err": err.split("\tCommand being timed")[0],
            "wall": wall, "cpu": float(stats["user"]) + float(stats["sys"]),
            "rss_mb": int(stats["rss_kb"]) / 1024}


def summarize(name, r, want_code, must=None, out_limit=None):
    if r is None:
        print("%-34s FAIL  timed out after 600 s" % name)
        return False
    findings, first_err = "-", ""
    try:
        j = json.loads(r["out"])
        findings = len(j.get("findings", []))
        errs = [x["message"] for x in j.get("diagnostics", []) if x["level"] == "error"]
        first_err = errs[0] if errs else ""
    except (ValueError, KeyError, TypeError):
        first_err = next((l for l in r["err"].splitlines() if "error" in l), "")
    problems = []
    if r["cpu"] >= 10:
        problems.append("slow")
    if r["rss_mb"] > 200:
        problems.append("RSS")
    if r["code"] not in (want_code if isinstance(want_code, tuple) else (want_code,)):
        problems.append("exit %s, want %s" % (r["code"], want_code))
    if must and not must(r):
        problems.append("missing expected output")
    if out_limit and len(r["out"]) + len(r["err"]) > out_limit:
        problems.append("output of %d bytes" % (len(r["out"]) + len(r["err"])))
    print("%-34s %-4s wall %6.2fs cpu %6.2fs rss %7.1f MB exit %s findings %-6s %s" % (
        name, "ok" if not problems else "FAIL", r["wall"], r["cpu"], r["rss_mb"], r["code"],
        findings, ("[" + ", ".join(problems) + "] " if problems else "") + first_err[:110]))
    return not problems


def scan(binary, target, extra=()):
    return run(binary, ["scan", "--format", "json", "--signatures", CANARY_RULES, target]
               + list(extra))


def has(words):
    return lambda r: words in r["out"].decode("utf-8", "replace") + r["err"]


def status_of(r, path):
    j = json.loads(r["out"])
    for f in j["findings"]:
        if f.get("path") == path:
            return f["status"]
    return None


def main():
    args = sys.argv[1:]
    binary = os.path.join(ROOT, "target/release/strata")
    work = "/tmp/strata-hostile"
    if "--bin" in args:
        i = args.index("--bin")
        binary = args[i + 1]
        del args[i:i + 2]
    if "--dir" in args:
        i = args.index("--dir")
        work = args[i + 1]
        del args[i:i + 2]
    gen = None
    if "--gen" in args:
        i = args.index("--gen")
        gen = args[i + 1]
        del args[i:i + 2]
    work = os.path.abspath(work)
    os.makedirs(work, exist_ok=True)

    def generator():
        nonlocal gen
        if gen is None:
            subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "corpus"],
                           cwd=ROOT, check=True)
            gen = os.path.join(ROOT, "target/release/examples/corpus")
        return gen

    def target(name):
        """Builds the shape once (DIR/NAME.done records the path to scan)."""
        d = os.path.join(work, name)
        done = os.path.join(work, name + ".done")
        if not os.path.exists(done):
            subprocess.run(["rm", "-rf", d], check=True)
            out = subprocess.run([generator(), "hostile", name, d], stdout=subprocess.PIPE,
                                 check=True).stdout
            with open(done, "w") as f:
                f.write(json.loads(out)["target"])
        with open(done) as f:
            return f.read()

    # name: [(label, command, exit code, what must show, output limit)];
    # command is "scan", "layers" or a list of extra scan arguments.
    def present(path):
        return lambda r: status_of(r, path) == "present"

    def over_budget(n):
        key = "over the findings budget per run"
        return lambda r: json.loads(r["out"])["summary"]["suppressed"].get(key) == n

    rows = [
        ("longname", [
            ("GNU longname 1.5 GB: scan", "scan", 2, has("GNU long name of 1500000000 bytes"),
             64 << 10),
            ("GNU longname 1.5 GB: layers", "layers", 2, None, 64 << 10)]),
        ("pax", [
            ("PAX path 2 GB: scan", "scan", 2, has("PAX extended header"), 64 << 10),
            ("PAX path 2 GB: layers", "layers", 2, None, 64 << 10)]),
        ("sparse", [("sparse block at 2^44", "scan", 1, has("/sparse.conf"), None)]),
        ("awslines", [("200 MB of one AWS line", "scan", 1, None, None)]),
        ("createdby", [("1 MB created_by, 16k secrets", "scan", 1, None, None)]),
        ("dotdot", [("20k entries ../ + 50 KB", "scan", 0, None, 1 << 20)]),
        ("deep", [("1500 files 50k dirs deep", "scan", 2, has("not read"), None)]),
        ("deepok", [("1500 files 1k dirs deep", "scan", 0, None, None)]),
        ("tfstate", [("10 tfstate x 37k passwords", "scan", 1, None, None)]),
        ("fanout", [("index fan-out 30^4", "scan", 0, None, None)]),
        ("sharedconfig", [("4000 entries, one 1 MB config", "scan", 0, None, None)]),
        ("names", [("layers: 20k 50 KB names", "layers", 0, None, None)]),
        # Both 150k-hit rows are over the 25,000-findings budget per run: the first
        # findings in path order are listed, the rest counted (docs/limits.md).
        ("hitslinks",
         [("150k hits + 150k hardlinks", "scan", 1, present("/s/1.conf"), None)]),
        ("hitsonetarget",
         [("150k hits + 150k links to one", "scan", 1, over_budget(150_001 - 25_000), None)]),
        # The second layer's copies are the first one's findings again (same path, same
        # secret: reported once); canary 0 is all zeros, a placeholder.
        ("repeated", [("150k secret files, twice (memo)", "scan", 1,
                       over_budget(150_000 - 1 - 25_000), None)]),
        ("linkchain", [("chain of 150k hardlinks", "scan", 1, present("/c0"), None)]),
        ("samepath", [("150k versions + links, one path", "scan", 2,
                       has("is written more than 64 times"), None)]),
        ("listed", [
            ("one layer listed 60k times", "scan", 1, None, None),
            ("one layer listed 60k times: layers", "layers", 0, None, None)]),
        ("listedmany", [("2k-hit layer listed 20k times", "scan", 1, None, None)]),
        ("cpiomany", [("initramfs .gz of 3M cpio members", "scan", 2,
                       has("more than 100000 members"), None)]),
        ("zipheaders", [("zip: 64 MB of local headers", "scan", 2,
                         has("read more than twice the zip's size"), None)]),
        ("threads", [
            ("--threads 20000", ["--threads", "20000"], 0, None, None),
            ("--threads 2^64-1", ["--threads", "18446744073709551615"], 0, None, None)]),
    ]

    def check(t, label, command, code, must, out_limit):
        if command == "layers":
            r = run(binary, ["layers", t])
        else:
            r = scan(binary, t, [] if command == "scan" else command)
        return summarize(label, r, code, must, out_limit)

    only = set(args)
    ok = True
    for name, check_list in rows:
        if only and name not in only:
            continue
        t = target(name)
        results = [check(t, *c) for c in check_list]
        ok = ok and all(results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
