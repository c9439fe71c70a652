#!/usr/bin/env bash
# Static checks: yamllint, ansible-lint (production profile), ansible-test sanity.
# ansible-test needs the collection at ansible_collections/opsdrill/drills/: a copy of the
# working tree (tracked and new files, not ignored ones) in a temp dir provides it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"

echo "== yamllint"
yamllint -s .

echo "== ansible-lint (production profile)"
ansible-lint --nocolor -q

echo "== ansible-test sanity"
pip_version=$(python -c 'import re, ansible_test._internal.python_requirements as m, inspect; print(re.search(r"pip=.([0-9.]+)", inspect.getsource(m)).group(1))')
bootstrap="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ ! -f "$bootstrap" ]]; then
  mkdir -p "$(dirname "$bootstrap")"
  cp "$root/scripts/ansible_test_get_pip.py" "$bootstrap"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/ansible_collections/opsdrill/drills"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | grep -zv '^\.collections/' |
  xargs -0 -I{} cp --parents -P {} "$dest/" 2>/dev/null || true
cd "$dest"
git init -q . && git add -A >/dev/null 2>&1
# shellcheck is not packaged here.
ansible-test sanity --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --skip-test shellcheck --color no "$@"
