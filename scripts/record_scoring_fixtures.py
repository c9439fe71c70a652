#!/usr/bin/env python
"""Record the scoring fixtures from real drills on the lab: one command.

    .venv/bin/python scripts/record_scoring_fixtures.py [-k memory_limits]

Runs tests/integration/drills/test_fix_judgement.py (a scripted trainee fixes, hides or
pretends to fix four faults, each run a real drill) with OPSDRILL_RECORD_FIXTURES set, so
that every run leaves its evidence under tests/unit/scoring/fixtures/recorded/<fault>-<run>/:
timeline.jsonl, the audit log excerpt of the drill (the trainee's requests and those in
the namespace), the catalog entry and the touched object as the test read it before the
drill, with the fault, and after the trainee (objects.json). The unit tests replay the
scorer on them. Needs the running lab (make lab); takes about 15 minutes.
"""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "tests" / "unit" / "scoring" / "fixtures" / "recorded"


def main(argv):
    env = dict(os.environ, OPSDRILL_RECORD_FIXTURES=str(TARGET), OPSDRILL_REQUIRE_LAB="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH="%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", "")))
    TARGET.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
           "tests/integration/drills/test_fix_judgement.py"] + argv
    print("recording into %s: %s" % (TARGET, " ".join(cmd)), flush=True)
    return subprocess.call(cmd, cwd=str(REPO), env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
