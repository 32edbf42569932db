#!/usr/bin/env python3
"""Extracts the layer blobs of an image archive (exactly the bytes strata
decompresses) into OUTDIR, in manifest order, and prints one path per line.

Handles docker-save archives (manifest.json "Layers": `*/layer.tar` or
`blobs/sha256/...`) and OCI archives (index.json -> manifest, nested indexes
followed to the first image manifest). Streams; never holds a blob in memory.

usage: layers.py ARCHIVE OUTDIR
"""
import json
import os
import shutil
import sys
import tarfile


def main():
    archive, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    with tarfile.open(archive, "r:") as t:
        members = {m.name.lstrip("./"): m for m in t.getmembers()}

        def read_json(name):
            with t.extractfile(members[name]) as f:
                return json.load(f)

        def blob(digest):
            return "blobs/" + digest.replace(":", "/", 1)

        if "index.json" in members and "manifest.json" not in members:
            doc = read_json("index.json")
            while "manifests" in doc:  # index (possibly nested): take the first image
                doc = read_json(blob(doc["manifests"][0]["digest"]))
            names = [blob(layer["digest"]) for layer in doc["layers"]]
        else:
            names = [n.lstrip("./") for n in read_json("manifest.json")[0]["Layers"]]
        paths = []
        for i, name in enumerate(names):
            out = os.path.join(outdir, f"layer{i:03}.blob")
            with t.extractfile(members[name]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            paths.append(out)
    print("\n".join(paths))


if __name__ == "__main__":
    main()
