#!/usr/bin/env python3
"""Builds a docker-save (legacy layout) image from host directories, one
layer per directory, without docker: for benchmarks and false-positive
checks on real OS content.

usage: mkimage.py OUT.tar [--gzip] DIR [DIR ...]
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


def layer_from_dir(src, tmpdir, index, compress):
    raw = os.path.join(tmpdir, f"layer{index}.tar")
    with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as t:
        t.add(src, arcname=src.lstrip("/"), recursive=True,
              filter=lambda ti: None if ti.isdev() else ti)
    h = hashlib.sha256()
    with open(raw, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    diff_id = "sha256:" + h.hexdigest()
    if not compress:
        return raw, diff_id
    gz = raw + ".gz"
    with open(raw, "rb") as f, gzip.open(gz, "wb", compresslevel=6) as g:
        shutil.copyfileobj(f, g, 1 << 20)
    os.remove(raw)
    return gz, diff_id


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    out = args.pop(0)
    compress = False
    if args and args[0] == "--gzip":
        compress = True
        args.pop(0)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
        layers, diff_ids, history = [], [], []
        for i, d in enumerate(args):
            path, diff_id = layer_from_dir(d, tmp, i, compress)
            layers.append(path)
            diff_ids.append(diff_id)
            history.append({"created": "1970-01-01T00:00:00Z", "created_by": f"COPY {d} {d}"})
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        names = [f"layer{i}/layer.tar" for i in range(len(layers))]
        manifest = json.dumps([{"Config": config_name, "RepoTags": ["bench/os-content:1"],
                                "Layers": names}]).encode()
        with tarfile.open(out, "w") as t:
            for name, path in zip(names, layers):
                t.add(path, arcname=name)
            for name, data in ((config_name, config), ("manifest.json", manifest)):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))


if __name__ == "__main__":
    main()
