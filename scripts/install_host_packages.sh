#!/usr/bin/env bash
# Debian packages the lab and the tests need. Idempotent; needs root.
set -euo pipefail
packages=(
  # the lab node
  containerd runc containernetworking-plugins iptables conntrack openssl iproute2 util-linux
  # the lab's images (debootstrap rootfs, static pause binary)
  debootstrap gcc libc6-dev
  # real dependencies for the service unit tests
  redis-server postgresql-15
  # scorecard rendering test; the incident desk browser test (Selenium drives chromium-driver)
  chromium chromium-driver
  # the trainee shell: the seeds' commands (curl, watch, git; redis-cli comes with redis-server)
  curl procps git
  # the venv
  python3-venv
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "host packages: all present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "host packages missing (${missing[*]}); run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "host packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts no services here (no systemd as PID 1); the lab and tests start their own.
echo "host packages: installed"
