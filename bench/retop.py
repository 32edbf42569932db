#!/usr/bin/env python3
"""Copies an OCI archive, changing ONLY its top layer: the top layer's tar gets
one extra small file appended (so its digest and diff_id change), and the
config, manifest and index.json are rewritten to match. Every other blob is
copied byte for byte. Used by the cached-rescan benchmark. Streams.

usage: retop.py IN.oci.tar OUT.oci.tar [TAG]
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import zlib


class GzHashWriter:
    def __init__(self, f):
        self.f, self.z, self.h = f, zlib.compressobj(6, zlib.DEFLATED, 31), hashlib.sha256()

    def write(self, b):
        self.h.update(b)
        self.f.write(self.z.compress(b))
        return len(b)

    def close(self):
        self.f.write(self.z.flush())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), os.path.getsize(path)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    tag = sys.argv[3] if len(sys.argv) > 3 else "retop"
    tmp = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(dst)))
    try:
        with tarfile.open(src, "r:") as t:
            members = {m.name.lstrip("./"): m for m in t.getmembers()}

            def read_json(name):
                with t.extractfile(members[name]) as f:
                    return json.load(f)

            def blob(digest):
                return "blobs/" + digest.replace(":", "/", 1)

            index = read_json("index.json")
            mdesc = index["manifests"][0]
            manifest = read_json(blob(mdesc["digest"]))
            assert "layers" in manifest, "nested index not supported"
            config = read_json(blob(manifest["config"]["digest"]))
            top = manifest["layers"][-1]
            old_top = blob(top["digest"])
            new_layer = os.path.join(tmp, "layer")
            with t.extractfile(members[old_top]) as raw, \
                    gzip.GzipFile(fileobj=raw) as gz, open(new_layer, "wb") as out:
                sink = GzHashWriter(out)
                with tarfile.open(fileobj=gz, mode="r|") as tin, \
                        tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tout:
                    for m in tin:
                        tout.addfile(m, tin.extractfile(m) if m.isreg() else None)
                    data = f"changed top layer: {tag}\n".encode()
                    ti = tarfile.TarInfo(f"data/retop-{tag}.txt")
                    ti.size = len(data)
                    tout.addfile(ti, io.BytesIO(data))
                sink.close()
            diff_id = "sha256:" + sink.h.hexdigest()
            top["digest"], top["size"] = sha256_file(new_layer)
            config["rootfs"]["diff_ids"][-1] = diff_id
            cfg = json.dumps(config).encode()
            manifest["config"]["digest"] = "sha256:" + hashlib.sha256(cfg).hexdigest()
            manifest["config"]["size"] = len(cfg)
            man = json.dumps(manifest).encode()
            mdesc["digest"], mdesc["size"] = "sha256:" + hashlib.sha256(man).hexdigest(), len(man)
            idx = json.dumps(index).encode()
            new = {blob(manifest["config"]["digest"]): cfg, blob(mdesc["digest"]): man,
                   "index.json": idx}
            with tarfile.open(dst + ".part", "w") as out:
                for name, m in members.items():
                    if name in new or name == old_top:
                        continue
                    out.addfile(m, t.extractfile(m) if m.isreg() else None)
                out.add(new_layer, arcname=blob(top["digest"]))
                for name, data in new.items():
                    ti = tarfile.TarInfo(name)
                    ti.size = len(data)
                    out.addfile(ti, io.BytesIO(data))
        os.replace(dst + ".part", dst)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
