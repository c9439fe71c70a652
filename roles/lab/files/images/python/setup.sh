# Runs inside the image's chroot (bash -euo pipefail), cwd = this directory.
# $OUT is where to leave "version" and "env" (extra KEY=VALUE lines for Env).
apt-get install -y --no-install-recommends python3
# Like the upstream python image: python3 and python in /usr/local/bin.
ln -sf /usr/bin/python3 /usr/local/bin/python3
ln -sf python3 /usr/local/bin/python
ln -sf python3 /usr/bin/python
python3 - <<'PY'
import hashlib, hmac, http.server, json, socket, ssl, threading, urllib.request, urllib.parse
print("python stdlib check ok:", ssl.OPENSSL_VERSION)
PY
version=$(python3 -c 'import platform; print(platform.python_version())')
echo "$version" > "$OUT/version"
echo "PYTHON_VERSION=$version" > "$OUT/env"
