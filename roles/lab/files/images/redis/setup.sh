# Runs inside the image's chroot (bash -euo pipefail), cwd = this directory.
# The upstream redis image runs redis as uid/gid 999; create the account
# before the package does so it gets those ids.
groupadd --system --gid 999 redis
useradd --system --uid 999 --gid redis --home-dir /var/lib/redis --no-create-home \
  --shell /usr/sbin/nologin redis
apt-get install -y --no-install-recommends redis-server redis-tools
mkdir -p /data
chown redis:redis /data
install -m 0755 docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
redis-server --version
version=$(dpkg-query -W -f '${Version}' redis-server)
version=${version#*:}
echo "$version" > "$OUT/version"
echo "REDIS_VERSION=${version%%-*}" > "$OUT/env"
