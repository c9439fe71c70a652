#!/usr/bin/env bash
# Build the lab's container images from Debian packages, without a registry
# or a container engine, as OCI archives for `ctr -n k8s.io images import`.
#
# usage: build_images.sh [OUT_DIR [VERSION]]
#
#   OUT_DIR  cache directory (default ~/.cache/opsdrill/lab/images)
#   VERSION  cache version string (default v1); the cache key is
#            VERSION-<sha256 of these build inputs, 12 hex>, so editing any
#            file under images/, this script, oci_pack.py or pause.c rebuilds.
#
# Results, in OUT_DIR/<key>/ with OUT_DIR/current -> <key>:
#   <name>.oci.tar  one OCI image layout archive per image
#   images.tsv      one line per image: NAME<TAB>REF<TAB>ARCHIVE (absolute path)
#   images.json     {"key", "base_layer": {"digest", "size", "diff_id", "uncompressed_size"},
#                    "images": [{"name", "ref", "archive", "archive_bytes", "manifest_digest",
#                    "layer_digest", "layer_bytes", "package_version"}]}
#   .complete       the key; when present (and the archives too) a run is a
#                   cache hit and returns at once
# Older key directories are removed after a successful build. OUT_DIR/work/
# keeps what later builds reuse: the base rootfs and layer
# (base-<suite>-r<revision>-<mirror hash>/) and apt's lists and .deb cache (apt/).
#
# Images: pause (static, no base), and python, postgres, redis, prometheus,
# alertmanager and ee (the execution environment drill pods run in: the pinned
# Python requirements, image.json "inputs"), each one delta layer over one shared debootstrap --variant=minbase
# layer (same digest in every archive). A delta is built by mounting an overlay
# (lowerdir=base) in a private mount+pid namespace, installing packages in a
# chroot of the merged tree, and packing the upperdir (overlay whiteouts become
# OCI .wh. entries). Without overlayfs the base is copied and diffed instead
# (forced by OPSDRILL_IMAGES_NO_OVERLAY=1). Mounts live only in the private
# namespaces, so nothing stays mounted even if the build is killed.
#
# Environment: OPSDRILL_DEBIAN_MIRROR (http://deb.debian.org/debian),
# OPSDRILL_DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security),
# OPSDRILL_IMAGES (space-separated subset to build, for development only),
# OPSDRILL_IMAGES_NO_OVERLAY=1, OPSDRILL_IMAGES_KEEP_WORK=1.
#
# Host packages: debootstrap gcc libc6-dev python3 util-linux (installed with
# apt-get when missing). Must run as root.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
suite=bookworm
mirror=${OPSDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${OPSDRILL_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Bump when the base recipe (build_base/configure_base) changes; the base
# rootfs and its layer are cached separately from the images under this key.
base_revision=2
all_images=(pause python postgres redis prometheus alertmanager ee)
# The repository (or installed collection) root: image.json's "inputs" are paths from here.
repo_root=$(cd "$here/../../.." && pwd)
chroot_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# cache_hit OUT KEY: OUT/.complete names KEY and every archive it lists exists
cache_hit() {
  local name ref archive
  [[ -f "$1/.complete" && $(<"$1/.complete") == "$2" && -f "$1/images.tsv" ]] || return 1
  while IFS=$'\t' read -r name ref archive; do
    [[ -s $archive ]] || return 1
  done <"$1/images.tsv"
}

# image_inputs IMAGE_JSON: the repository files (paths from its root) an image builds from.
image_inputs() {
  python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1])).get("inputs", [])))' "$1" | sed '/^$/d'
}

log() { printf '%s opsdrill-images: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '%s opsdrill-images: ERROR: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Namespace-side helpers. These run as `build_images.sh --ns ACTION ...`
# inside `unshare --mount --pid --fork --propagation private`, so every
# mount they make disappears with the namespace; the EXIT trap unmounts
# explicitly as well.

ns_mounts=()
ns_umount_all() {
  local i
  for ((i = ${#ns_mounts[@]} - 1; i >= 0; i--)); do
    umount "${ns_mounts[i]}" 2>/dev/null || umount -l "${ns_mounts[i]}" 2>/dev/null || true
  done
  ns_mounts=()
}

ns_mount() { # ns_mount TARGET mount-args...
  local target=$1
  shift
  mount "$@" "$target"
  ns_mounts+=("$target")
}

# Prepare ROOT for chroot: /proc, a minimal /dev, the host's resolv.conf.
ns_prepare_root() {
  local root=$1
  ns_mount "$root/proc" -t proc proc
  ns_mount "$root/dev" -t tmpfs -o mode=0755,nosuid,size=16m tmpfs
  mknod -m 0666 "$root/dev/null" c 1 3
  mknod -m 0666 "$root/dev/zero" c 1 5
  mknod -m 0666 "$root/dev/full" c 1 7
  mknod -m 0666 "$root/dev/random" c 1 8
  mknod -m 0666 "$root/dev/urandom" c 1 9
  mknod -m 0666 "$root/dev/tty" c 5 0
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  mkdir -m 1777 "$root/dev/shm"
  if [[ -L "$root/etc/resolv.conf" || ! -f "$root/etc/resolv.conf" ]]; then
    rm -f "$root/etc/resolv.conf"
    : >"$root/etc/resolv.conf"
  fi
  # read-only: nothing in the chroot may write through to the host's file
  ns_mount "$root/etc/resolv.conf" --bind "$(readlink -f /etc/resolv.conf)"
  mount -o remount,bind,ro "$root/etc/resolv.conf"
}

ns_chroot() { # ns_chroot ROOT SCRIPT
  chroot "$1" /usr/bin/env -i PATH="$chroot_path" HOME=/root LANG=C.UTF-8 TERM=dumb \
    DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
    /bin/bash -euo pipefail -c "$2"
}

apt_opts='-q -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false -o APT::Install-Suggests=false'

# --ns debootstrap TARGET
ns_debootstrap() {
  local target=$1
  trap ns_umount_all EXIT
  debootstrap --variant=minbase --components=main "$suite" "$target" "$mirror"
}

# --ns configure-base ROOT: apt sources and settings, security updates, slimming.
ns_configure_base() {
  local root=$1 apt_dir=$2
  trap ns_umount_all EXIT
  ns_prepare_root "$root"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  ns_mount "$root/var/lib/apt/lists" --bind "$apt_dir/lists"
  ns_mount "$root/var/cache/apt/archives" --bind "$apt_dir/archives"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
  cat >"$root/etc/apt/apt.conf.d/90opsdrill" <<'EOF'
// opsdrill lab image: small and non-interactive
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  # what Debian's slim images leave out; licences stay
  cat >"$root/etc/dpkg/dpkg.cfg.d/90opsdrill-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  ns_chroot "$root" "
    apt-get $apt_opts update
    apt-get $apt_opts -y upgrade
    find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
    find /usr/share/doc -mindepth 1 -type d -empty -delete
    rm -rf /usr/share/man/* /usr/share/groff/* /usr/share/info/* /usr/share/lintian/* \
      /usr/share/linda/* /usr/share/locale/*
  "
  ns_umount_all
  rm -f "$root/usr/sbin/policy-rc.d"
}

# --ns delta NAME MODE LOWER ROOTDIR UPPER WORK IMAGE_DIR APT_DIR META_OUT
#   MODE overlay: mount LOWER+UPPER at ROOTDIR; MODE copy: ROOTDIR is a copy.
ns_delta() {
  local name=$1 mode=$2 lower=$3 root=$4 upper=$5 work=$6 image_dir=$7 apt_dir=$8 meta=$9
  trap ns_umount_all EXIT
  if [[ $mode == overlay ]]; then
    ns_mount "$root" -t overlay overlay \
      -o "lowerdir=$lower,upperdir=$upper,workdir=$work,redirect_dir=off,metacopy=off,index=off"
  fi
  ns_prepare_root "$root"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  ns_mount "$root/var/lib/apt/lists" --bind "$apt_dir/lists"
  ns_mount "$root/var/cache/apt/archives" --bind "$apt_dir/archives"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/tmp/opsdrill-image/out"
  cp -a "$image_dir/." "$root/tmp/opsdrill-image/"
  # The host's CA bundle, for pip (a build-time file: /tmp/opsdrill-image goes before packing).
  cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/opsdrill-image/host-ca.pem"
  ns_chroot "$root" "
    cd /tmp/opsdrill-image
    export OUT=/tmp/opsdrill-image/out PIP_CERT=/tmp/opsdrill-image/host-ca.pem
    apt-get $apt_opts update
    source ./setup.sh
  "
  mkdir -p "$meta"
  cp -a "$root/tmp/opsdrill-image/out/." "$meta/"
  # Leave no build-only state behind: these binds come off before cleaning so
  # the shared apt cache is untouched, and files created during the build and
  # then removed never reach the upperdir.
  umount "$root/var/cache/apt/archives" "$root/var/lib/apt/lists" "$root/etc/resolv.conf"
  ns_mounts=("${ns_mounts[@]:0:${#ns_mounts[@]}-3}")
  ns_chroot "$root" "
    rm -f /usr/sbin/policy-rc.d
    rm -rf /tmp/opsdrill-image /tmp/* /var/tmp/* /root/.cache
    rm -f /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
    rm -f /var/cache/ldconfig/aux-cache
    find /var/log -type f -delete
  "
  ns_umount_all
  # the overlay copied up the resolv.conf mount point: drop it from the delta
  if [[ $mode == overlay && -e "$upper/etc/resolv.conf" ]]; then
    rm -f "$upper/etc/resolv.conf"
  fi
}

ns_main() {
  local action=$1 d
  shift
  case $action in
    debootstrap) ns_debootstrap "$@" ;;
    configure-base) ns_configure_base "$@" ;;
    delta) ns_delta "$@" ;;
    overlay-probe)
      d=$1
      mkdir -p "$d/l" "$d/u" "$d/w" "$d/m"
      touch "$d/l/f"
      mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w,redirect_dir=off,metacopy=off,index=off" "$d/m"
      rm "$d/m/f"
      umount "$d/m"
      python3 -c 'import os,stat,sys; st=os.lstat(sys.argv[1]); sys.exit(0 if stat.S_ISCHR(st.st_mode) and st.st_rdev==0 else 1)' "$d/u/f"
      ;;
    *) die "unknown namespace action $action" ;;
  esac
}

# ---------------------------------------------------------------------------
# Main. Everything runs from functions and the script's last line calls them,
# so bash has parsed the whole file before doing anything: editing or
# replacing this file while a build runs cannot derail that build.

main() {
[[ $(id -u) == 0 ]] || die "must run as root (debootstrap, chroot, mounts)"
out_root=${1:-${OPSDRILL_IMAGES_DIR:-$HOME/.cache/opsdrill/lab/images}}
version=${2:-v1}
mkdir -p "$out_root"
out_root=$(cd "$out_root" && pwd)

inputs_hash=$(
  cd "$here"
  {
    printf 'suite=%s mirror=%s security=%s base_revision=%s\n' "$suite" "$mirror" "$security_mirror" "$base_revision"
    find build_images.sh oci_pack.py pause.c images -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    for spec in images/*/image.json; do image_inputs "$spec"; done | LC_ALL=C sort -u | (cd "$repo_root" && xargs -r sha256sum)
  } | sha256sum | cut -c1-12
)
key="$version-$inputs_hash"
out="$out_root/$key"
read -r -a selected <<<"${OPSDRILL_IMAGES:-${all_images[*]}}"

if cache_hit "$out" "$key"; then
  log "images cached in $out"
  ln -sfn "$key" "$out_root/current"
  exit 0
fi

exec 9>"$out_root/.lock"
flock 9
if cache_hit "$out" "$key"; then # another run finished while we waited
  log "images cached in $out"
  exit 0
fi

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc)
[[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/aarch64-linux-gnu/libc.a ]] || need+=(libc6-dev)
command -v unshare >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3-minimal)
if ((${#need[@]})); then
  log "installing host packages: ${need[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -q || true
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}"
fi

start=$SECONDS
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
work="$out_root/work"
build="$out/.build"
mkdir -p "$work" "$build/blobs" "$build/logs"
apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
pack() { python3 "$here/oci_pack.py" "$@"; }
nsrun() { unshare --mount --pid --fork --propagation private -- bash "$self" --ns "$@"; }

# run_logged STEP CMD...: output to a log file; its tail on failure
run_logged() {
  local step=$1 logf="$build/logs/$1.log"
  shift
  if ! "$@" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    die "$step failed (full log: $logf)"
  fi
}

# ---- overlay probe ----------------------------------------------------------
delta_mode=overlay
if [[ ${OPSDRILL_IMAGES_NO_OVERLAY:-} == 1 ]]; then
  delta_mode=copy
else
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  probe=$(mktemp -d "$work/probe.XXXXXX")
  if ! nsrun overlay-probe "$probe" >/dev/null 2>&1; then
    delta_mode=copy
  fi
  rm -rf "$probe"
fi
log "key $key; delta layers via $delta_mode; output $out"

# ---- pause ------------------------------------------------------------------
build_pause() {
  local root="$build/pause-root"
  rm -rf "$root" && mkdir -p "$root"
  gcc -static -Os -s -Wall -Wextra -DPAUSE_VERSION='"3.10-opsdrill"' -o "$root/pause" "$here/pause.c"
  chmod 0755 "$root/pause"
  "$root/pause" -v >/dev/null
  pack layer "$root" --blobs "$build/blobs" --json-out "$build/pause.layer.json" >/dev/null
  rm -rf "$root"
}

# ---- base -------------------------------------------------------------------
base_key="$suite-r$base_revision-$(printf '%s %s' "$mirror" "$security_mirror" | sha256sum | cut -c1-8)"
base="$work/base-$base_key"

build_base() {
  if [[ -f "$base/.done" ]]; then
    log "base $base_key cached"
    return
  fi
  rm -rf "$base" "$base.tmp"
  mkdir -p "$base.tmp/blobs"
  local rootfs="$base.tmp/rootfs"
  log "debootstrap --variant=minbase $suite (a few minutes)"
  run_logged debootstrap nsrun debootstrap "$rootfs"
  log "configuring base (security updates, slim dpkg excludes)"
  run_logged configure-base nsrun configure-base "$rootfs" "$apt_dir"
  # what must not ship in the base layer
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
    "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/root/.bash_history
  mkdir -p "$rootfs/var/lib/apt/lists/partial" "$rootfs/var/cache/apt/archives/partial"
  find "$rootfs/var/log" -type f -delete
  local m
  for m in proc sys dev; do
    ! mountpoint -q "$rootfs/$m" || die "$rootfs/$m is still mounted"
  done
  # device nodes are the runtime's business; /proc and /sys stay empty mount points
  find "$rootfs/tmp" "$rootfs/var/tmp" "$rootfs/dev" -mindepth 1 -delete
  rm -f "$rootfs/etc/hostname"
  : >"$rootfs/etc/resolv.conf"
  chmod 0644 "$rootfs/etc/resolv.conf"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
  log "packing base layer"
  pack layer "$rootfs" --blobs "$base.tmp/blobs" --json-out "$base.tmp/layer.json" >/dev/null
  date -u +%FT%TZ >"$base.tmp/.done"
  mv "$base.tmp" "$base"
  # older base revisions are no longer referenced
  find "$work" -maxdepth 1 -name 'base-*' -not -name "base-$base_key" -exec rm -rf {} +
}

# ---- deltas -----------------------------------------------------------------
build_delta() {
  local name=$1 input
  local d="$build/delta-$name"
  rm -rf "$d" && mkdir -p "$d/upper" "$d/work" "$d/root" "$d/src"
  # The image's directory plus the repository files its image.json names as inputs.
  cp -a "$here/images/$name/." "$d/src/"
  while read -r input; do cp "$repo_root/$input" "$d/src/"; done < <(image_inputs "$here/images/$name/image.json")
  if [[ $delta_mode == copy ]]; then
    cp -a "$base/rootfs/." "$d/root/"
  fi
  run_logged "$name" nsrun delta "$name" "$delta_mode" "$base/rootfs" "$d/root" "$d/upper" \
    "$d/work" "$d/src" "$apt_dir" "$d/meta"
  if [[ $delta_mode == overlay ]]; then
    pack layer "$d/upper" --mode overlay --blobs "$build/blobs" --json-out "$build/$name.layer.json" >/dev/null
  else
    pack layer "$d/root" --mode diff --lower "$base/rootfs" --blobs "$build/blobs" \
      --json-out "$build/$name.layer.json" >/dev/null
  fi
  cp -a "$d/meta" "$build/$name.meta"
  [[ ${OPSDRILL_IMAGES_KEEP_WORK:-} == 1 ]] || rm -rf "$d"
}

# ---- image archives ---------------------------------------------------------
image_config() { # image_config NAME OUTFILE: image.json plus the setup's extra Env
  python3 - "$here/images/$1/image.json" "$build/$1.meta/env" "$2" <<'EOF'
import json, os, sys
spec = json.load(open(sys.argv[1]))
if os.path.exists(sys.argv[2]):
    extra = [l.strip() for l in open(sys.argv[2]) if "=" in l]
    names = {e.split("=", 1)[0] for e in extra}
    env = [e for e in spec["config"].get("Env", []) if e.split("=", 1)[0] not in names]
    spec["config"]["Env"] = env + extra
json.dump(spec, open(sys.argv[3], "w"), indent=1, sort_keys=True)
EOF
}

write_image() { # write_image NAME LAYER_JSON...
  local name=$1 ref layer_args=()
  shift
  ref=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ref"])' "$here/images/$name/image.json")
  image_config "$name" "$build/$name.config.json"
  for l in "$@"; do layer_args+=(--layer "$l"); done
  pack image --ref "$ref" --blobs "$build/blobs" --config "$build/$name.config.json" \
    "${layer_args[@]}" --out "$out/$name.oci.tar" >"$build/$name.image.json"
  log "$name: $ref -> $name.oci.tar ($(du -h "$out/$name.oci.tar" | cut -f1))"
}

for name in "${selected[@]}"; do
  [[ -d "$here/images/$name" ]] || die "unknown image $name"
done
for name in "${selected[@]}"; do
  if [[ $name != pause ]]; then
    build_base
    ln -f "$base/blobs/"* "$build/blobs/" 2>/dev/null || cp -f "$base/blobs/"* "$build/blobs/"
    break
  fi
done
for name in "${selected[@]}"; do
  t0=$SECONDS
  if [[ $name == pause ]]; then
    log "pause: gcc -static pause.c"
    build_pause
    write_image pause "$build/pause.layer.json"
    continue
  fi
  log "$name: installing packages into a delta over the base"
  build_delta "$name"
  write_image "$name" "$base/layer.json" "$build/$name.layer.json"
  log "$name: done in $((SECONDS - t0))s"
done

# ---- manifest -----------------------------------------------------------------
python3 - "$out" "$key" "$build" "$here/images" "$base/layer.json" "${selected[@]}" <<'EOF'
import json, os, sys
out, key, build, images_dir, base_json = sys.argv[1:6]
names = sys.argv[6:]
entries = []
for name in names:
    spec = json.load(open(os.path.join(images_dir, name, "image.json")))
    desc = json.load(open(os.path.join(build, name + ".image.json")))
    archive = os.path.join(out, name + ".oci.tar")
    version_file = os.path.join(build, name + ".meta", "version")
    layer = json.load(open(os.path.join(build, name + ".layer.json")))
    entries.append({
        "name": name,
        "ref": spec["ref"],
        "archive": archive,
        "archive_bytes": os.path.getsize(archive),
        "manifest_digest": desc["digest"],
        "layer_digest": layer["digest"],
        "layer_bytes": layer["size"],
        "package_version": open(version_file).read().strip() if os.path.exists(version_file) else None,
    })
manifest = {"key": key, "images": entries}
if any(n != "pause" for n in names):
    base = json.load(open(base_json))
    manifest["base_layer"] = {k: base[k] for k in ("digest", "size", "diff_id", "uncompressed_size")}
with open(os.path.join(out, "images.json.tmp"), "w") as fh:
    json.dump(manifest, fh, indent=1, sort_keys=True)
os.replace(os.path.join(out, "images.json.tmp"), os.path.join(out, "images.json"))
with open(os.path.join(out, "images.tsv.tmp"), "w") as fh:
    for e in entries:
        fh.write(f"{e['name']}\t{e['ref']}\t{e['archive']}\n")
os.replace(os.path.join(out, "images.tsv.tmp"), os.path.join(out, "images.tsv"))
EOF
if [[ ${OPSDRILL_IMAGES:-} == "" || ${OPSDRILL_IMAGES:-} == "${all_images[*]}" ]]; then
  [[ ${OPSDRILL_IMAGES_KEEP_WORK:-} == 1 ]] || rm -rf "$build"
  echo "$key" >"$out/.complete"
  ln -sfn "$key" "$out_root/current"
  # earlier keys are superseded (only directories this script made are removed)
  for old in "$out_root"/*-*; do
    [[ -d $old && $old != "$out" && $(basename "$old") =~ ^[A-Za-z0-9._]+-[0-9a-f]{12}$ ]] || continue
    [[ -f $old/images.json || -d $old/.build ]] && rm -rf "$old"
  done
else
  log "subset build (OPSDRILL_IMAGES): not marking $out complete"
fi
log "built ${#selected[@]} images in $((SECONDS - start))s; manifest $out/images.json"
}

# one line, so bash has read it all before main runs
if [[ ${1:-} == --ns ]]; then ns_main "${@:2}"; else main "$@"; fi; exit $?
