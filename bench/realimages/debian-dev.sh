#!/usr/bin/env bash
# Real Debian image with development libraries, for false-positive measurement (issue 12 item 5).
#
# Layer 0: `debootstrap --variant=minbase bookworm`; layer 1: `apt-get install` in a chroot of
# build-essential libssl-dev libgnutls28-dev python3-pip default-jre-headless. Packed by umoci as
# an OCI image layout (scan it with `strata scan OUT/layout`). Slow (10-20 min, ~900 MB): a bench,
# not a test.
#
# usage: bash bench/realimages/debian-dev.sh OUT_DIR     (root; needs debootstrap, umoci)
set -euo pipefail
out=${1:?usage: debian-dev.sh OUT_DIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}
pkgs="build-essential libssl-dev libgnutls28-dev python3-pip default-jre-headless"
for t in debootstrap umoci; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y debootstrap umoci)" >&2; exit 2; }
done
mkdir -p "$out"
layout="$out/layout"
bundle="$out/bundle"
rm -rf "$layout" "$bundle"
umoci init --layout "$layout"
umoci new --image "$layout:debian-dev"
umoci unpack --image "$layout:debian-dev" "$bundle"
rootfs="$bundle/rootfs"

debootstrap --variant=minbase "$suite" "$rootfs" "$mirror"
umoci repack --image "$layout:debian-dev" --history.created_by "debootstrap --variant=minbase $suite" "$bundle"

cleanup() { umount "$rootfs/proc" 2>/dev/null || true; umount "$rootfs/sys" 2>/dev/null || true; }
trap cleanup EXIT
mount -t proc proc "$rootfs/proc"
mount -t sysfs sys "$rootfs/sys"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs
cleanup
trap - EXIT
umoci repack --image "$layout:debian-dev" --history.created_by "apt-get install -y $pkgs" "$bundle"
umoci gc --layout "$layout"
du -sh "$layout"
echo "image: $layout (tag debian-dev)"
