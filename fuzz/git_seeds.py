#!/usr/bin/env python3
"""Seeds for the git_objects fuzz target from a real git repository.

usage: fuzz/git_seeds.py OUTDIR

Makes a small repository with git (three commits, a fake token added and
then removed), and writes its loose objects (mode 0), then after
`git gc --aggressive` its pack index (mode 2), its pack alone (mode 3) and
the pack with its index (mode 4), in the input format of
strata::fuzzing::git_objects.
"""
import glob
import os
import struct
import subprocess
import sys
import tempfile


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.test",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.test")
    subprocess.run(["git", "-C", repo] + list(args), check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as repo:
        git(repo, "init", "-q")
        settings = "".join("setting_%d = value %d\n" % (i, i) for i in range(40))
        with open(os.path.join(repo, "settings.ini"), "w") as f:
            f.write(settings)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "settings")
        with open(os.path.join(repo, "settings.ini"), "a") as f:
            f.write("HF_TOKEN=hf_FAKEfuzzSEEDtokenEXAMPLExyzABCDEfg\n")
        git(repo, "commit", "-q", "-am", "token")
        with open(os.path.join(repo, "settings.ini"), "w") as f:
            f.write(settings + "# token removed\n")
        git(repo, "commit", "-q", "-am", "remove token")
        objects = os.path.join(repo, ".git/objects")
        for i, path in enumerate(sorted(glob.glob(objects + "/??/*"))):
            with open(path, "rb") as f, open(os.path.join(out, "real-loose-%02d.bin" % i), "wb") as o:
                o.write(b"\x00" + f.read())
        git(repo, "gc", "-q", "--aggressive", "--prune=now")
        (pack,) = glob.glob(objects + "/pack/*.pack")
        with open(pack, "rb") as f:
            pack_bytes = f.read()
        with open(pack[:-5] + ".idx", "rb") as f:
            idx_bytes = f.read()
        with open(os.path.join(out, "real-index.bin"), "wb") as o:
            o.write(b"\x02" + idx_bytes)
        with open(os.path.join(out, "real-pack.bin"), "wb") as o:
            o.write(b"\x03" + pack_bytes)
        with open(os.path.join(out, "real-pack-idx.bin"), "wb") as o:
            o.write(b"\x04" + struct.pack("<I", len(pack_bytes)) + pack_bytes + idx_bytes)


if __name__ == "__main__":
    main()
