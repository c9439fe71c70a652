#!/usr/bin/env bash
# Import the lab images (built by build_images.sh) into containerd's k8s.io namespace
# when containerd lacks them or holds another build (digest differs); then check the
# result with `ctr images ls`.
#
# usage: import_images.sh CONTAINERD_SOCKET IMAGES_DIR
# Prints "imported REF" per import.
set -euo pipefail
sock=$1 images=$2
manifest="$images/current/images.json"
[[ -f "$manifest" ]] || { echo "no image manifest at $manifest: run build_images.sh first" >&2; exit 1; }
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }
# REF DIGEST ARCHIVE, one line per image.
wanted=$(python3 -c 'import json,sys
for i in json.load(open(sys.argv[1]))["images"]: print(i["ref"], i["manifest_digest"], i["archive"])' "$manifest")
# "REF DIGEST" of what containerd holds.
held() { ctr_ images ls | awk 'NR > 1 {print $1, $3}'; }

current=$(held)
while read -r ref digest archive; do
  if ! grep -qxF "$ref $digest" <<<"$current"; then
    ctr_ images import "$archive" >/dev/null
    echo "imported $ref"
  fi
done <<<"$wanted"

current=$(held)
status=0
while read -r ref digest archive; do
  grep -qxF "$ref $digest" <<<"$current" || { echo "image $ref ($digest) missing after import" >&2; status=1; }
done <<<"$wanted"
exit $status
