#!/usr/bin/env python3
"""Re-checks issue 9's hostile inputs against a release build of strata.

usage: bench/hostile.py [--bin PATH] [--dir DIR] [ROW ...]

Builds each input of issue 9 ("Memory and time blow up", "Other defects",
"Layer semantics") in DIR (default /tmp/strata-hostile, reused), runs strata
on it under /usr/bin/time -v and prints one line per run: wall and CPU
seconds, peak RSS, exit code, findings, and the first error diagnostic.
A row FAILs when it takes 10 s or more of CPU time (user + system: wall time
on a shared machine measures the other jobs too), more than 200 MB, exits
0 although something was not read, or misses what it must find.
Timings and sizes belong here, not in the test suite (tests/it/hostile.rs
holds the small, fast versions).
"""
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANARY_RULES = os.path.join(ROOT, "tests/it/canary.toml")
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
INDEX_MT = "application/vnd.oci.image.index.v1+json"


def canary(n):
    """A value the test canary rule matches, unique to n."""
    return "CANARY_%012d" % n


# ---------------------------------------------------------------------------------------
# Raw tar blocks
# ---------------------------------------------------------------------------------------

def octal(v, width):
    return ("%0*o" % (width - 1, v)).encode() + b"\0"


def checksum(h):
    h[148:156] = b" " * 8
    h[148:156] = ("%06o\0 " % sum(h)).encode()
    return bytes(h)


def header(name, flag=b"0", size=0, link=b""):
    h = bytearray(512)
    name = name if isinstance(name, bytes) else name.encode()
    h[0:len(name[:100])] = name[:100]
    h[100:108] = octal(0o644, 8)
    h[108:116] = octal(0, 8)
    h[116:124] = octal(0, 8)
    h[124:136] = octal(size, 12)
    h[136:148] = octal(0, 12)
    h[156:157] = flag
    h[157:157 + len(link)] = link
    h[257:265] = b"ustar  \0"
    return checksum(h)


def pad(n):
    return b"\0" * ((512 - n % 512) % 512)


def tfile(name, data):
    data = data if isinstance(data, bytes) else data.encode()
    return header(name, b"0", len(data)) + data + pad(len(data))


def longname(name):
    name = name if isinstance(name, bytes) else name.encode()
    return header(b"././@LongLink", b"L", len(name)) + name + pad(len(name))


END = b"\0" * 1024


# ---------------------------------------------------------------------------------------
# OCI layouts
# ---------------------------------------------------------------------------------------

class Hashing:
    def __init__(self, inner):
        self.inner, self.h, self.n = inner, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        if self.inner is not None:
            self.inner.write(b)
        return len(b)

    def flush(self):
        pass


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs/sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def put(self, data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs/sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    def layer(self, write):
        """A gzip layer; write(w) produces the tar stream. Returns (digest, size, diff_id)."""
        tmp = os.path.join(self.root, "blobs/tmp")
        with open(tmp, "wb") as raw:
            stored = Hashing(raw)
            with gzip.GzipFile(fileobj=stored, mode="wb", compresslevel=6, mtime=0) as gz:
                plain = Hashing(gz)
                write(plain)
        d = stored.h.hexdigest()
        os.rename(tmp, os.path.join(self.root, "blobs/sha256", d))
        return ("sha256:" + d, stored.n, "sha256:" + plain.h.hexdigest())

    def manifest(self, layers, history=None, config_extra=None):
        config = {"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]},
                  "history": history or [{"created_by": "COPY x /"} for _ in layers]}
        config.update(config_extra or {})
        cd, cs = self.put(json.dumps(config).encode())
        m = {"schemaVersion": 2, "mediaType": MANIFEST_MT,
             "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": cd, "size": cs},
             "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                         "digest": l[0], "size": l[1]} for l in layers]}
        return self.put(json.dumps(m).encode())

    def index(self, entries):
        idx = {"schemaVersion": 2,
               "manifests": [{"mediaType": mt, "digest": d, "size": s} for d, s, mt in entries]}
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump(idx, f)
        return self.root

    def image(self, layers, **kw):
        d, s = self.manifest(layers, **kw)
        return self.index([(d, s, MANIFEST_MT)])


def one_layer(root, write, **kw):
    lay = Layout(root)
    return lay.image([lay.layer(write)], **kw)


def tar_bytes(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return out.getvalue()


# ---------------------------------------------------------------------------------------
# The rows of the table
# ---------------------------------------------------------------------------------------

def build_longname(d):
    def w(out):
        size = 1_500_000_000
        out.write(header(b"././@LongLink", b"L", size))
        chunk = b"n" * (1 << 20)
        left = size
        while left:
            out.write(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))
        out.write(pad(size))
        out.write(tfile("x", "hidden behind the long name\n"))
        out.write(tfile("after.conf", "key = %s\n" % canary(1)))
        out.write(END)
    return one_layer(d, w)


def build_pax(d):
    def w(out):
        value = 2_000_000_000
        prefix = b"%d path=" % (value + 17)
        size = len(prefix) + value + 1
        out.write(header(b"PaxHeader", b"x", size))
        out.write(prefix)
        chunk = b"p" * (1 << 20)
        left = value
        while left:
            out.write(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))
        out.write(b"\n" + pad(size))
        out.write(tfile("x", "hidden\n"))
        out.write(END)
    return one_layer(d, w)


def build_sparse(d):
    h = bytearray(header(b"sparse.conf", b"S", 512))

    def b256(v):
        return b"\x80\0\0\0" + v.to_bytes(8, "big")
    h[386:398] = b256(1 << 44)
    h[398:410] = b256(512)
    h[483:495] = b256((1 << 44) + 512)
    h = checksum(h)
    block = ("key = %s\n" % canary(2)).encode().ljust(512, b"\n")
    return one_layer(d, lambda out: out.write(h + block + END))


def build_aws_lines(d):
    line = b"aws_access_key_id = AKIAZTESTFAKEEXAMPLE key = CANARY_REPEATED0001\n"
    size = 200 << 20
    n = size // len(line)

    def w(out):
        out.write(header("app/keys.txt", b"0", n * len(line)))
        block = line * 10_000
        left = n
        while left:
            k = min(left, 10_000)
            out.write(block[:k * len(line)])
            left -= k
        out.write(pad(n * len(line)))
        out.write(END)
    return one_layer(d, w)


def build_created_by(d):
    instr = "RUN echo " + " ".join("key=%s" % canary(i) for i in range(16_000))
    instr += " " + "x" * max(0, (1 << 20) - len(instr))
    return one_layer(d, lambda out: out.write(tfile("a.txt", "hi\n") + END),
                     history=[{"created_by": instr}])


def build_longnames(d, count, name, entry):
    """`count` entries, each named by a GNU long name `name(i)` and written as `entry`."""
    def w(out):
        for i in range(count):
            out.write(longname(name(i)))
            out.write(entry)
        out.write(END)
    return one_layer(d, w)


def build_dotdot(d):
    return build_longnames(d, 20_000, lambda i: "../" + "n" * 50_000 + str(i), header(b"short"))


def build_deep(d):
    return build_longnames(d, 1_500, lambda i: "d%d/%sf" % (i, "a/" * 50_000),
                           tfile("short", "x\n"))


def build_deep_ok(d):
    return build_longnames(d, 1_500, lambda i: "d%d/%sf" % (i, "a/" * 1_000),
                           tfile("short", "x\n"))


def build_tfstate(d):
    def w(out):
        for f in range(10):
            parts = ['{"version": 4, "resources": [']
            for i in range(37_000):
                parts.append('{"password": "Tst%07dQz"},' % (f * 37_000 + i))
            parts.append('{}]}\n')
            out.write(tfile("infra/%d/terraform.tfstate" % f, "".join(parts)))
        out.write(END)
    return one_layer(d, w)


def build_fanout(d):
    lay = Layout(d)
    l = lay.layer(lambda out: out.write(tfile("a.txt", "hello\n") + END))
    dg, sz = lay.manifest([l])
    mt = MANIFEST_MT
    for _ in range(4):
        idx = {"schemaVersion": 2, "mediaType": INDEX_MT,
               "manifests": [{"mediaType": mt, "digest": dg, "size": sz}] * 30}
        dg, sz = lay.put(json.dumps(idx).encode())
        mt = INDEX_MT
    return lay.index([(dg, sz, INDEX_MT)])


def build_shared_config(d):
    os.makedirs(d, exist_ok=True)
    layer = tar_bytes([("a.txt", b"hello\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"padding": "p" * (1 << 20)}},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}})
    entries = [{"Config": "c.json", "RepoTags": ["t:%d" % i], "Layers": ["l/layer.tar"]}
               for i in range(4000)]
    path = os.path.join(d, "many.tar")
    with open(path, "wb") as f:
        f.write(tar_bytes([("l/layer.tar", layer), ("c.json", config.encode()),
                           ("manifest.json", json.dumps(entries).encode())]))
    return path


def build_names(d):
    return build_longnames(d, 20_000, lambda i: "n" * 50_000 + str(i), header(b"short"))


def link_header(name, target):
    return header(name, b"1", 0, target.encode())


def then_removed(d, write, marker):
    """A layer written by `write`, then a layer holding only the removal `marker`."""
    lay = Layout(d)
    return lay.image([lay.layer(write), lay.layer(lambda out: out.write(header(marker) + END))])


def build_hits_links(d):
    """150k files, each with its own secret, and 150k hardlinks to them; a
    second layer deletes the originals (the links keep them)."""
    def w(out):
        for i in range(150_000):
            out.write(tfile("s/%d.conf" % i, "key = %s\n" % canary(10_000_000 + i)))
        for i in range(150_000):
            out.write(link_header("l/%d" % i, "s/%d.conf" % i))
        out.write(END)
    return then_removed(d, w, b"s/.wh..wh..opq")


def build_hits_one_target(d):
    """150k hits (one per file) and 150k hardlinks all to one file."""
    def w(out):
        out.write(tfile("s.conf", "key = %s\n" % canary(3)))
        for i in range(150_000):
            out.write(tfile("h/%d.conf" % i, "key = %s\n" % canary(20_000_000 + i)))
        for i in range(150_000):
            out.write(link_header("l/%d" % i, "s.conf"))
        out.write(END)
    return then_removed(d, w, b".wh.s.conf")


def build_link_chain(d):
    """One secret, then a chain of 150k hardlinks, each to the previous."""
    def w(out):
        out.write(tfile("c0", "key = %s\n" % canary(4)))
        for i in range(1, 150_000):
            out.write(link_header("c%d" % i, "c%d" % (i - 1)))
        out.write(END)
    return then_removed(d, w, b".wh.c0")


def build_same_path(d):
    """150k versions of one path in one layer, each with its own secret and
    kept alive by a hardlink made right after it."""
    def w(out):
        for i in range(150_000):
            out.write(tfile("s.conf", "key = %s\n" % canary(30_000_000 + i)))
            out.write(link_header("l/%d" % i, "s.conf"))
        out.write(END)
    return one_layer(d, w)


def build_listed(d, times=60_000, files=1):
    lay = Layout(d)

    def w(out):
        for i in range(files):
            out.write(tfile("app/%d.conf" % i, "key = %s\n" % canary(5 + i)))
        out.write(END)
    l = lay.layer(w)
    return lay.image([l] * times)


def build_threads(d):
    return one_layer(d, lambda out: out.write(tfile("a.txt", "x" * 19_000 + "\n") + END))


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
    os.makedirs(work, exist_ok=True)

    def target(name, build):
        d = os.path.join(work, name)
        done = os.path.join(work, name + ".done")
        if not os.path.exists(done):
            subprocess.run(["rm", "-rf", d])
            p = build(d)
            with open(done, "w") as f:
                f.write(p)
        with open(done) as f:
            return f.read()

    # name: (build, [(label, command, exit code, what must show, output limit)]);
    # command is "scan", "layers" or a list of extra scan arguments.
    def present(path):
        return lambda r: status_of(r, path) == "present"

    def over_budget(n):
        key = "over the findings budget per run"
        return lambda r: json.loads(r["out"])["summary"]["suppressed"].get(key) == n

    rows = [
        ("longname", build_longname, [
            ("GNU longname 1.5 GB: scan", "scan", 2, has("GNU long name of 1500000000 bytes"),
             64 << 10),
            ("GNU longname 1.5 GB: layers", "layers", 2, None, 64 << 10)]),
        ("pax", build_pax, [
            ("PAX path 2 GB: scan", "scan", 2, has("PAX extended header"), 64 << 10),
            ("PAX path 2 GB: layers", "layers", 2, None, 64 << 10)]),
        ("sparse", build_sparse, [("sparse block at 2^44", "scan", 1, has("/sparse.conf"), None)]),
        ("awslines", build_aws_lines, [("200 MB of one AWS line", "scan", 1, None, None)]),
        ("createdby", build_created_by, [("1 MB created_by, 16k secrets", "scan", 1, None, None)]),
        ("dotdot", build_dotdot, [("20k entries ../ + 50 KB", "scan", 0, None, 1 << 20)]),
        ("deep", build_deep, [("1500 files 50k dirs deep", "scan", 2, has("not read"), None)]),
        ("deepok", build_deep_ok, [("1500 files 1k dirs deep", "scan", 0, None, None)]),
        ("tfstate", build_tfstate, [("10 tfstate x 37k passwords", "scan", 1, None, None)]),
        ("fanout", build_fanout, [("index fan-out 30^4", "scan", 0, None, None)]),
        ("sharedconfig", build_shared_config,
         [("4000 entries, one 1 MB config", "scan", 0, None, None)]),
        ("names", build_names, [("layers: 20k 50 KB names", "layers", 0, None, None)]),
        # Both 150k-hit rows are over the 25,000-findings budget per run: the first
        # findings in path order are listed, the rest counted (docs/limits.md).
        ("hitslinks", build_hits_links,
         [("150k hits + 150k hardlinks", "scan", 1, present("/s/1.conf"), None)]),
        ("hitsonetarget", build_hits_one_target,
         [("150k hits + 150k links to one", "scan", 1, over_budget(150_001 - 25_000), None)]),
        ("linkchain", build_link_chain,
         [("chain of 150k hardlinks", "scan", 1, present("/c0"), None)]),
        ("samepath", build_same_path, [("150k versions + links, one path", "scan", 2,
                                        has("is written more than 64 times"), None)]),
        ("listed", build_listed, [
            ("one layer listed 60k times", "scan", 1, None, None),
            ("one layer listed 60k times: layers", "layers", 0, None, None)]),
        ("listedmany", lambda d: build_listed(d, 20_000, 2_000),
         [("2k-hit layer listed 20k times", "scan", 1, None, None)]),
        ("threads", build_threads, [
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
    for name, build, check_list in rows:
        if only and name not in only:
            continue
        t = target(name, build)
        results = [check(t, *c) for c in check_list]
        ok = ok and all(results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
