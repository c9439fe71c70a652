# Runs inside the image's chroot (bash -euo pipefail), cwd = this directory, with the
# files image.json's "inputs" names (paths from the repository root) copied next to it.
# $OUT is where to leave "version" and "env" (extra KEY=VALUE lines for Env).
#
# The lab's execution environment: what AWX runs a job in, from Debian packages and the
# controller's pinned Python requirements (requirements.txt, the one owner of the pins).
# The `ansible` package is left out: it only bundles collections (about 400 MB), and a drill
# uses none but opsdrill.drills, which comes with the project, as under AWX.
apt-get install -y --no-install-recommends python3 python3-venv git ca-certificates openssh-client
python3 -m venv /opt/opsdrill-ee
grep -v -E '^ansible==' requirements.txt > /tmp/ee-requirements.txt
/opt/opsdrill-ee/bin/pip install --quiet --no-cache-dir --disable-pip-version-check -r /tmp/ee-requirements.txt
/opt/opsdrill-ee/bin/ansible-playbook --version | head -1
/opt/opsdrill-ee/bin/python -c 'import ansible_runner, kubernetes, jinja2, yaml; print("ee python ok")'
# AWX's layout: the job's private data dir is /runner, writable by any uid.
mkdir -p /runner && chmod 1777 /runner
rm -f /tmp/ee-requirements.txt
version=$(/opt/opsdrill-ee/bin/ansible-playbook --version | head -1 | sed 's/.*core \([0-9.]*\).*/\1/')
echo "$version" > "$OUT/version"
echo "ANSIBLE_CORE_VERSION=$version" > "$OUT/env"
