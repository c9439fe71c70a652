#!/usr/bin/env bash
# The one test command (`make test`, called by .ci/run): every stage in order, from a
# fresh machine. Fast checks first; then the real lab and everything that needs it.
#
#   OPSDRILL_TEST_STAGES="lint unit lab smoke stack drills teardown"  (default: all)
#   OPSDRILL_DRILL_FILTER="-k memory_limits"   pytest selection for the drill stage
#
# Each pytest stage writes JUnit XML under tests/output/; the last line sums them up as
# "opsdrill: N passed, N failed, N skipped".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg" OPSDRILL_REQUIRE_LAB=1
stages=${OPSDRILL_TEST_STAGES:-lint unit lab smoke stack drills teardown}
out="$root/tests/output"
mkdir -p "$out"
rm -f "$out"/junit-*.xml
failed_stages=()
t0=$SECONDS

stage() { printf '\n==== %s [%ss] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - t0))" "$*"; }
want() { [[ " $stages " == *" $1 "* ]]; }
# pytest exit 5 (nothing collected) is a failure here too: a stage must test something.
run_pytest() {
  local name=$1; shift
  python -m pytest -p no:cacheprovider --junitxml="$out/junit-$name.xml" "$@"
  local rc=$?
  [[ $rc -eq 0 ]] || failed_stages+=("$name(rc=$rc)")
}
run_step() {
  local name=$1; shift
  "$@" || failed_stages+=("$name")
}

stage "dependencies (Debian packages, venv)"
make --no-print-directory deps || { echo "dependencies failed"; exit 1; }

if want lint; then stage "lint: yamllint, ansible-lint, ansible-test sanity"; run_step lint scripts/lint.sh; fi
if want unit; then stage "unit tests (no cluster)"; run_pytest unit tests/unit -q; fi

if want lab; then
  stage "lab: build (cached in ~/.cache/opsdrill/lab) and bring-up"
  run_step lab-build scripts/lab_build.sh
  run_step lab-up ansible-playbook lab.yml -e lab_state=present
fi
if want smoke; then stage "lab smoke tests"; run_pytest smoke tests/integration/lab -q -m lab; fi
if want stack; then
  stage "SEO stack: setup, seed commands, manifests against the API server, teardown"
  run_pytest stack tests/integration/stack -q
fi
if want drills && [[ -d tests/integration/drills ]]; then
  stage "drills: every fault on the lab"
  # shellcheck disable=SC2086
  run_pytest drills tests/integration/drills -q ${OPSDRILL_DRILL_FILTER:-}
fi
if want teardown; then
  stage "lab teardown leaves nothing behind"
  run_step lab-down ansible-playbook lab.yml -e lab_state=absent
  run_pytest teardown tests/integration/teardown -q
fi

stage "summary"
python scripts/junit_summary.py "$out"/junit-*.xml
if [[ ${#failed_stages[@]} -gt 0 ]]; then
  echo "failed stages: ${failed_stages[*]}"
  exit 1
fi
