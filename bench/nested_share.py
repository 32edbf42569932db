#!/usr/bin/env python3
"""How much of a scan of the real tree is its nested .gz files.

strata decompresses and scans every gzip file inside a layer (man pages,
changelogs, compressed JSON); `gzip -dc` of the layer, the benchmark's
baseline, does not. This splits the real tree's layer tar (bench/mkreal.sh
leaves it at BENCH_DIR/work/real/layer-all.tar) into the gzip files and the
rest, wraps each as a one-layer uncompressed docker-save archive with
strata's generator, and times strata with one thread on each, side by side,
ROUNDS times (the minimum CPU seconds counts). Then, as the benchmark's r1
row does, the rest alone as one gzip layer against `gzip -dc` of that layer.

usage: nested_share.py BENCH_DIR STRATA CORPUS [ROUNDS]
  STRATA  the strata binary; CORPUS  the generator (target/release/examples/corpus)
"""
import os
import resource
import subprocess
import sys
import tarfile
import zlib


def split(src, gz_path, rest_path):
    """Writes the gzip files and the other entries of `src` to two tars; returns
    (gzip files, their bytes, their expanded bytes, other files' bytes)."""
    files = stored = expanded = rest = 0
    with tarfile.open(src) as t, tarfile.open(gz_path, "w", format=tarfile.GNU_FORMAT) as gz, \
            tarfile.open(rest_path, "w", format=tarfile.GNU_FORMAT) as other:
        for m in t:
            if not m.isfile():
                continue
            with t.extractfile(m) as f:
                data = f.read()
            if data[:3] == b"\x1f\x8b\x08":
                files += 1
                stored += len(data)
                try:
                    expanded += len(zlib.decompressobj(31).decompress(data))
                except zlib.error:
                    pass
                target = gz
            else:
                rest += len(data)
                target = other
            f = tarfile.io.BytesIO(data)
            target.addfile(m, f)
    return files, stored, expanded, rest


def cpu_seconds(cmd):
    """CPU seconds (user + system) of one run of `cmd`, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    bench, strata, corpus = sys.argv[1:4]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    work = os.path.join(bench, "work", "nested")
    os.makedirs(work, exist_ok=True)
    tars = {n: os.path.join(work, f"{n}.tar") for n in ("gz", "rest")}
    files, stored, expanded, rest = split(
        os.path.join(bench, "work", "real", "layer-all.tar"), tars["gz"], tars["rest"])
    images = {}
    for name, tar in tars.items():
        images[name] = os.path.join(work, f"{name}.docker.tar")
        subprocess.run([corpus, "wrap", "docker", tar, f"bench/{name}:1", images[name]],
                       stdout=subprocess.DEVNULL, check=True)
    best = {name: float("inf") for name in images}
    for _ in range(rounds):
        for name, image in images.items():
            best[name] = min(best[name], cpu_seconds([strata, "scan", "--threads", "1", image]))
    # The rest alone as one gzip layer, against `gzip -dc` of the same blob.
    rest_gz = os.path.join(work, "rest.tar.gz")
    with open(rest_gz, "wb") as out:
        subprocess.run(["gzip", "-c", "-6", tars["rest"]], stdout=out, check=True)
    rest_oci = os.path.join(work, "rest.oci.tar")
    subprocess.run([corpus, "wrap", "oci-gzip", tars["rest"], "bench/rest:1", rest_oci],
                   stdout=subprocess.DEVNULL, check=True)
    gunzip = strata_rest = float("inf")
    for _ in range(rounds):
        gunzip = min(gunzip, cpu_seconds(["gzip", "-dc", rest_gz]))
        strata_rest = min(strata_rest, cpu_seconds([strata, "scan", "--threads", "1", rest_oci]))
    mib = 1 << 20
    print(f"gzip files: {files}, {stored / mib:.0f} MiB stored, {expanded / mib:.0f} MiB expanded; "
          f"other files: {rest / mib:.0f} MiB")
    total = best["gz"] + best["rest"]
    print(f"strata 1 thread, CPU s (min of {rounds}): gzip files {best['gz']:.2f}, "
          f"the rest {best['rest']:.2f}: the gzip files take {100 * best['gz'] / total:.0f}% "
          f"of the CPU for {100 * stored / (stored + rest):.0f}% of the stored bytes")
    print(f"the rest as one gzip layer: gzip -dc {gunzip:.2f} CPU s, strata 1 thread "
          f"{strata_rest:.2f}: {gunzip / strata_rest:.2f}x gzip -dc")


if __name__ == "__main__":
    main()
