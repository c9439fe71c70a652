# Runs inside the image's chroot (bash -euo pipefail), cwd = this directory.
apt-get install -y --no-install-recommends prometheus-alertmanager
# Upstream names: /bin/alertmanager, /bin/amtool, /etc/alertmanager/alertmanager.yml.
ln -sf prometheus-alertmanager /usr/bin/alertmanager
test -x /bin/alertmanager
mkdir -p /etc/alertmanager /alertmanager
install -m 0644 alertmanager.yml /etc/alertmanager/alertmanager.yml
chown -R 65534:65534 /etc/alertmanager /alertmanager
version=$(dpkg-query -W -f '${Version}' prometheus-alertmanager)
echo "$version" > "$OUT/version"
case $version in
  0.25.0*) ;;
  *) echo "alertmanager $version does not match the image tag v0.25.0" >&2; exit 1 ;;
esac
