#!/usr/bin/env python3
"""Streams a big docker-save (legacy layout) image with gzip layers, for the
memory benchmark: layer 0 holds ONE large text file (plus a small secret file
after it), the remaining bytes are spread over further layers of 4 MiB text
files. Nothing larger than a few MiB is ever held in memory; layers are
compressed in parallel (one process per layer, up to the CPU count).

usage: mkbig.py OUT.tar --total-mb N --file-mb M [--layers L] [--level 6]

The text is word-like pseudo-random ASCII (skewed 512-word vocabulary, numbers,
punctuation, ~80-char lines) that gzip compresses about 3.5x, like the
corpus generator's `Text` entries. Deterministic for given arguments.
"""
import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import tarfile
import tempfile
import zlib

POOL = 8 << 20  # bytes of distinct text; chunks are drawn from it
CHUNK = 64 << 10  # > gzip's 32 KiB window, so the reuse is invisible to gzip
FILE = 4 << 20
SECRET = (b"AWS_ACCESS_KEY_ID=AKIAFAKESTRATA2345QZ\n"
          b"AWS_SECRET_ACCESS_KEY=Fake0nly/StrataTestSecret+9xQ2mK7vR4tLp8\n")


def make_pool(seed):
    rng = random.Random(seed)
    alpha = "etaoinshrdlcumwfgypbvkjxqz_"
    vocab = ["".join(rng.choice(alpha) for _ in range(rng.randint(2, 10))) for _ in range(512)]
    out, line, size = [], [], 0
    while size < POOL + CHUNK:
        r = rng.random()
        if r < 1 / 32:
            w = str(rng.randrange(100000))
        elif r < 2 / 32:
            w = "="
        elif r < 3 / 32:
            w = "."
        else:
            w = vocab[int(512 * rng.random() * rng.random() * rng.random())]
        line.append(w)
        if sum(map(len, line)) + len(line) > 60 + rng.randrange(40):
            s = " ".join(line) + "\n"
            out.append(s)
            size += len(s)
            line = []
    return "".join(out).encode()


class TextFile(io.RawIOBase):
    """`size` bytes of text: CHUNK-sized slices of the pool at random offsets."""

    def __init__(self, pool, size, seed):
        self.pool, self.left, self.rng = pool, size, random.Random(seed)
        self.buf = b""

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.left + len(self.buf)
        while len(self.buf) < n and self.left > 0:
            take = min(CHUNK, self.left)
            off = self.rng.randrange(POOL)
            self.buf += self.pool[off:off + take]
            self.left -= take
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class GzHashWriter:
    """File-like sink: sha256 of the raw bytes (diff_id) + gzip into `path`."""

    def __init__(self, path, level):
        self.f = open(path, "wb")
        self.z = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        self.f.write(self.z.compress(b))
        return len(b)

    def close(self):
        self.f.write(self.z.flush())
        self.f.close()


def build_layer(job):
    path, index, files, level = job
    pool = make_pool(1234 + index)
    sink = GzHashWriter(path, level)
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as t:
        d = tarfile.TarInfo(f"data/layer{index:03}")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        t.addfile(d)
        for n, (name, size) in enumerate(files):
            ti = tarfile.TarInfo(f"data/layer{index:03}/{name}")
            ti.size, ti.mode = size, 0o644
            t.addfile(ti, TextFile(pool, size, index * 1_000_003 + n))
        ti = tarfile.TarInfo(f"data/layer{index:03}/settings.env")
        ti.size = len(SECRET)
        t.addfile(ti, io.BytesIO(SECRET))
    sink.close()
    return "sha256:" + sink.h.hexdigest(), sink.n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--total-mb", type=int, required=True)
    ap.add_argument("--file-mb", type=int, required=True)
    ap.add_argument("--layers", type=int, default=3, help="layers after the big-file layer")
    ap.add_argument("--level", type=int, default=6)
    a = ap.parse_args()
    big = a.file_mb << 20
    rest = max(0, (a.total_mb << 20) - big)
    plans = [[("big.txt", big)]]
    for layer in range(a.layers):
        share = rest // a.layers + (rest % a.layers if layer == 0 else 0)
        files, n = [], 0
        while share > 0:
            files.append((f"file-{n:05}.txt", min(FILE, share)))
            share -= files[-1][1]
            n += 1
        if files:
            plans.append(files)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        jobs = [(os.path.join(tmp, f"layer{i}.tar.gz"), i, files, a.level)
                for i, files in enumerate(plans)]
        with multiprocessing.Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
            results = pool.map(build_layer, jobs, chunksize=1)
        diff_ids = [r[0] for r in results]
        history = [{"created": "1970-01-01T00:00:00Z", "created_by": f"COPY data{i} /data/"}
                   for i in range(len(jobs))]
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        names = [f"layer{i}/layer.tar" for i in range(len(jobs))]
        manifest = json.dumps([{"Config": config_name, "RepoTags": ["bench/big-file:1"],
                                "Layers": names}]).encode()
        part = a.out + ".part"
        with tarfile.open(part, "w") as t:
            for name, job in zip(names, jobs):
                t.add(job[0], arcname=name)
            for name, data in ((config_name, config), ("manifest.json", manifest)):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        os.replace(part, a.out)
    print(json.dumps({"uncompressed": sum(r[1] for r in results), "diff_ids": diff_ids}))


if __name__ == "__main__":
    main()
