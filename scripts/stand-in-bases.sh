#!/usr/bin/env bash
# Build the two stand-in base images from Debian 13 (trixie) packages, for machines that cannot pull
# python:3.13.x-slim-trixie and gcr.io/distroless/python3-debian13 (no registry reachable):
#
#   scripts/stand-in-bases.sh OUT_DIR
#
# writes OUT_DIR/build.tar (builder: Debian's Python 3.13 + pip, like python:3.13-slim), OUT_DIR/runtime.tar
# (runtime: the package set of distroless python3-debian13, no shell, no pip, no apt), OUT_DIR/build.config
# and OUT_DIR/runtime.config (one `docker import --change` instruction a line) and OUT_DIR/packages.txt
# (every Debian package and version in each image). Needs root, debootstrap and deb.debian.org;
# DEBOOTSTRAP_CACHE=DIR keeps the downloaded .debs between runs.
# scripts/base-images.sh calls it and caches OUT_DIR under a hash of THIS file and the host's local CA
# certificates: change the recipe here and the next run rebuilds. docs/kubernetes.md ("Stand-in base images") lists every difference from the real bases.
set -euo pipefail

SUITE=trixie
MIRROR=http://deb.debian.org/debian
# The builder: what `python:3.13-slim` offers the Dockerfile's build stage (`pip`, `python`, CA certificates).
BUILD_PACKAGES=(python3.13 python3-pip python-is-python3 ca-certificates)
# The runtime: distroless python3-debian13 = static + base + cc + python3 layers, with their Debian packages
# as listed in GoogleContainerTools/distroless (static/config.bzl, base/config.bzl, cc/config.bzl,
# python3/config.bzl). Like distroless, only the packages' files are unpacked: no maintainer script runs.
RUNTIME_PACKAGES=(
  base-files netbase tzdata tzdata-legacy media-types                               # static
  libc6 libssl3t64 libzstd1 zlib1g                                                  # base
  libgomp1 libstdc++6 libgcc-s1 gcc-14-base                                         # cc
  libbz2-1.0 libdb5.3t64 libexpat1 liblzma5 libsqlite3-0 libuuid1 libncursesw6      # python3
  libtinfo6 libcom-err2 libcrypt1 libc-bin libgssapi-krb5-2 libk5crypto3 libkeyutils1
  libkrb5-3 libkrb5support0 libnsl2 libreadline8t64 libtirpc3t64 libffi8
  libpython3.13-minimal libpython3.13-stdlib python3.13-minimal python3.13-venv
)
NONROOT=65532 # distroless' nonroot user and group
NOBODY=65534

out="${1:?usage: stand-in-bases.sh OUT_DIR}"
[[ "$(id -u)" == 0 ]] || {
  echo "stand-in bases need root (debootstrap, chroot)" >&2
  exit 1
}
# debootstrap: Debian's package, installed here when missing (as scripts/docker-engine.sh does docker.io), so
# `make image-test` needs nothing installed by hand on a fresh Debian machine.
if ! command -v debootstrap >/dev/null && command -v apt-get >/dev/null; then
  echo "==> stand-in bases: installing Debian's debootstrap with apt-get" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } || true
fi
command -v debootstrap >/dev/null || {
  echo "debootstrap is not installed and apt-get could not install it (apt-get install debootstrap)" >&2
  exit 1
}
mkdir -p "$out"
work="$(mktemp -d "$out/.work.XXXXXX")"
cleanup() {
  # debootstrap mounts /proc and /sys inside the target; never leave a mount behind a failed run.
  local m
  for m in $(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '==> stand-in bases: %s\n' "$*" >&2; }

build="$work/build"
step "debootstrap $SUITE (minbase + ${BUILD_PACKAGES[*]} + the runtime's packages) from $MIRROR"
include="$(
  IFS=,
  echo "${BUILD_PACKAGES[*]},${RUNTIME_PACKAGES[*]}"
)"
cache_args=()
if [[ -n "${DEBOOTSTRAP_CACHE:-}" ]]; then # downloaded .debs kept between runs (a recipe change re-downloads nothing)
  mkdir -p "$DEBOOTSTRAP_CACHE"
  cache_args=(--cache-dir="$DEBOOTSTRAP_CACHE")
fi
debootstrap --variant=minbase "${cache_args[@]}" --include="$include" "$SUITE" "$build" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# --- runtime: unpack the packages' files only, then add what distroless adds around them ----------------
runtime="$work/runtime"
mkdir -p "$runtime/var/lib/dpkg/status.d"
step "runtime: unpacking ${#RUNTIME_PACKAGES[@]} packages (no maintainer scripts, as distroless)"
for pkg in "${RUNTIME_PACKAGES[@]}"; do
  debs=("$build"/var/cache/apt/archives/"${pkg}"_*.deb)
  [[ -f "${debs[0]}" ]] || {
    echo "no .deb of $pkg in the debootstrap cache" >&2
    exit 1
  }
  dpkg-deb -x "${debs[0]}" "$runtime"
  dpkg-deb -f "${debs[0]}" >"$runtime/var/lib/dpkg/status.d/$pkg" # what image scanners read, as distroless
done
ln -sf python3.13 "$runtime/usr/bin/python3"
ln -sf python3.13 "$runtime/usr/bin/python"
install -d -m 0755 "$runtime/etc/ssl/certs"
cp "$build/etc/ssl/certs/ca-certificates.crt" "$runtime/etc/ssl/certs/ca-certificates.crt"
cat >"$runtime/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nobody:x:$NOBODY:$NOBODY:nobody:/nonexistent:/sbin/nologin
nonroot:x:$NONROOT:$NONROOT:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$runtime/etc/group" <<EOF
root:x:0:
nobody:x:$NOBODY:
tty:x:5:
staff:x:50:
nonroot:x:$NONROOT:
EOF
cat >"$runtime/etc/nsswitch.conf" <<'EOF'
passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
EOF
cat >"$runtime/etc/os-release" <<'EOF'
PRETTY_NAME="Distroless stand-in (Debian GNU/Linux 13 packages, built by scripts/stand-in-bases.sh)"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="13"
VERSION="Debian GNU/Linux 13 (trixie)"
EOF
rm -f "$runtime/usr/lib/os-release"
install -d -m 0700 "$runtime/root"
install -d -m 0755 "$runtime/home"
install -d -m 0700 -o "$NONROOT" -g "$NONROOT" "$runtime/home/nonroot"
install -d -m 1777 "$runtime/tmp"
chroot "$runtime" /sbin/ldconfig # /etc/ld.so.cache, as distroless ships one
for forbidden in bin/sh bin/bash usr/bin/sh usr/bin/dash usr/bin/apt usr/bin/dpkg usr/bin/pip usr/bin/pip3; do
  [[ ! -e "$runtime/$forbidden" && ! -L "$runtime/$forbidden" ]] || {
    echo "runtime stand-in unexpectedly contains /$forbidden" >&2
    exit 1
  }
done

# --- builder: the debootstrapped system, without the package caches (as the slim images) ---------------
# This machine's own trusted CAs (Debian keeps local CAs in /usr/local/share/ca-certificates), so that pip in
# the build stage gets through a TLS-inspecting egress proxy as the host's pip does. The builder only: the
# runtime image trusts Debian's CA bundle alone, as distroless does.
local_cas=(/usr/local/share/ca-certificates/*.crt)
if [[ -f "${local_cas[0]}" ]]; then
  step "build: trusting the host's ${#local_cas[@]} local CA certificate(s) ($(basename -a "${local_cas[@]}" | paste -sd' '))"
  cp "${local_cas[@]}" "$build/usr/local/share/ca-certificates/"
  chroot "$build" update-ca-certificates >/dev/null
fi
step "build: trimming the package caches"
rm -rf "$build"/var/cache/apt/archives/*.deb "$build"/var/lib/apt/lists/* "$build"/var/log/*

{
  echo "# stand-in bases from $MIRROR $SUITE, built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# build image:"
  chroot "$build" dpkg-query -W -f '${Package}\t${Version}\n'
  echo "# runtime image:"
  for pkg in "${RUNTIME_PACKAGES[@]}"; do
    printf '%s\t%s\n' "$pkg" "$(sed -n 's/^Version: //p' "$runtime/var/lib/dpkg/status.d/$pkg")"
  done
} >"$work/packages.txt"

# Image configuration for `docker import --change` (the real images' ENTRYPOINT/USER/ENV/WORKDIR).
cat >"$work/build.config" <<'EOF'
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV LANG=C.UTF-8
CMD ["python3"]
EOF
cat >"$work/runtime.config" <<EOF
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8
USER $NONROOT
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/bin/python3.13"]
EOF

step "packing build.tar and runtime.tar"
tar --numeric-owner -C "$build" -cf "$work/build.tar" .
tar --numeric-owner -C "$runtime" -cf "$work/runtime.tar" .
mv "$work/build.tar" "$work/runtime.tar" "$work/build.config" "$work/runtime.config" "$work/packages.txt" "$out/"
step "done: $(du -sh "$out/build.tar" | cut -f1) build, $(du -sh "$out/runtime.tar" | cut -f1) runtime"
