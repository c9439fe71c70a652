"""Run the collection's playbooks from tests, the way users do (from the repository root)."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_playbook(playbook, *extra_vars, check=False, timeout=900):
    """ansible-playbook PLAYBOOK -e ... from the repo root; returns the CompletedProcess."""
    args = ["ansible-playbook", str(ROOT / playbook)]
    for item in extra_vars:
        args += ["-e", item]
    if check:
        args.append("--check")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False)
