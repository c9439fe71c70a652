#!/usr/bin/env bash
# Import the lab images (built by build_images.sh) into containerd's k8s.io namespace,
# skipping those already there; then list them with `ctr images ls` as the check.
#
# usage: import_images.sh CONTAINERD_SOCKET IMAGES_DIR
# Prints "imported REF" per import.
set -euo pipefail
sock=$1 images=$2
list="$images/current/images.tsv"
[[ -f "$list" ]] || { echo "no image list at $list: run build_images.sh first" >&2; exit 1; }
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

present=$(ctr_ images ls -q)
while IFS=$'\t' read -r name ref archive; do
  if ! grep -qxF "$ref" <<<"$present"; then
    ctr_ images import "$archive" >/dev/null
    echo "imported $ref"
  fi
done < "$list"

missing=0
present=$(ctr_ images ls -q)
while IFS=$'\t' read -r name ref archive; do
  grep -qxF "$ref" <<<"$present" || { echo "image $ref ($name) missing after import" >&2; missing=1; }
done < "$list"
exit $missing
