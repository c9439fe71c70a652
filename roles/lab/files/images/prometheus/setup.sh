# Runs inside the image's chroot (bash -euo pipefail), cwd = this directory.
# libjs-moment-timezone ships 210 MB of per-zone JSON; the web UI only loads
# moment-timezone-with-data.min.js, so the data directory is never unpacked.
echo 'path-exclude /usr/share/javascript/moment-timezone/data/*' \
  > /etc/dpkg/dpkg.cfg.d/91opsdrill-prometheus
apt-get install -y --no-install-recommends prometheus
test -f /usr/share/javascript/moment-timezone/moment-timezone-with-data.min.js
# bookworm is usr-merged, so /bin/prometheus and /bin/promtool already resolve.
test -x /bin/prometheus
test -x /bin/promtool
test -f /etc/prometheus/prometheus.yml
mkdir -p /prometheus
chown -R 65534:65534 /prometheus /etc/prometheus
version=$(dpkg-query -W -f '${Version}' prometheus)
echo "$version" > "$OUT/version"
case $version in
  2.42.0+*) ;;
  *) echo "prometheus $version does not match the image tag v2.42.0" >&2; exit 1 ;;
esac
