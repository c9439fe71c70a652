# Runs inside the image's chroot (bash -euo pipefail), cwd = this directory.
# Mirrors the upstream postgres image: uid/gid 999, no Debian "main" cluster,
# listen_addresses='*' in the sample config initdb copies, PGDATA volume.
groupadd --system --gid 999 postgres
useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --no-create-home \
  --shell /bin/bash postgres
mkdir -p /var/lib/postgresql
chown postgres:postgres /var/lib/postgresql

apt-get install -y --no-install-recommends postgresql-common
sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf
grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf
apt-get install -y --no-install-recommends postgresql-15

sample=/usr/share/postgresql/15/postgresql.conf.sample
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$sample"
grep -F "listen_addresses = '*'" "$sample"

# ssl-cert generated a snakeoil key pair at install time; initdb's config
# does not use it, and a private key baked into an image is no good to anyone.
rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem

mkdir -p /var/run/postgresql /docker-entrypoint-initdb.d
chown -R postgres:postgres /var/run/postgresql
chmod 3777 /var/run/postgresql
install -m 0755 docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ln -sf usr/local/bin/docker-entrypoint.sh /docker-entrypoint.sh
# 1777 until the entrypoint makes it 0700 for whichever user runs postgres
mkdir -p /var/lib/postgresql/data
chown postgres:postgres /var/lib/postgresql/data
chmod 1777 /var/lib/postgresql/data

for tool in postgres initdb pg_ctl pg_isready psql; do
  test -x "/usr/lib/postgresql/15/bin/$tool"
done
version=$(dpkg-query -W -f '${Version}' postgresql-15)
echo "$version" > "$OUT/version"
echo "PG_VERSION=$version" > "$OUT/env"
