#!/usr/bin/env bash
# Build (or reuse from ~/.cache/opsdrill/lab) the lab's binaries and images, in the
# foreground with progress lines: the same scripts and cache keys the lab role uses.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
read -r k8s etcd coredns jobs < <("$py" - "$root/roles/lab/defaults/main.yml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(d["lab_kubernetes_version"], d["lab_etcd_version"], d["lab_coredns_version"], d["lab_build_jobs"])
PY
)
cache=${OPSDRILL_LAB_CACHE:-$HOME/.cache/opsdrill/lab}
start=$SECONDS
OPSDRILL_BUILD_JOBS=$jobs "$root/roles/lab/files/build_binaries.sh" "$cache/bin/k8s-$k8s-etcd-$etcd-coredns-$coredns" "$k8s" "$etcd" "$coredns"
"$root/roles/lab/files/build_images.sh" "$cache/images"
echo "lab build: $((SECONDS - start))s (binaries and images in $cache)"
