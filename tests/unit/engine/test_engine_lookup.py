"""The drill_catalog lookup, as a playbook uses it (ansible on localhost, no cluster)."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


def lookup(**kwargs):
    args = ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in kwargs.items())
    expr = "{{ query('opsdrill.drills.drill_catalog', %s) | first | to_json }}" % args
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_CALLBACKS_ENABLED="",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="0", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CALLBACKS_ENABLED")
    proc = subprocess.run([ANSIBLE, "localhost", "-m", "ansible.builtin.debug", "-a", "msg=%s" % expr],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return None, out
    start = out.index("{")
    payload = json.loads(out[start:out.rindex("}") + 1])["msg"]
    return (json.loads(payload) if isinstance(payload, str) else payload), out


pytestmark = pytest.mark.skipif(not os.path.exists(ANSIBLE), reason="ansible not installed next to python")


def test_named_fault_is_resolved():
    result, out = lookup(scenario="outage", variant="resources", fault="memory_limits")
    assert result, out
    assert result["entry"]["key"] == "outage/resources/memory_limits"
    assert result["seed"] is None and result["picked"] is False
    assert result["faults"] == ["cpu_constraints", "memory_limits", "network_problems", "storage_issues"]


def test_seed_repeats_the_pick():
    first, out = lookup(scenario="error_spike", variant="code", seed=1234567)
    assert first, out
    again, _out = lookup(scenario="error_spike", variant="code", seed=1234567)
    assert first["seed"] == 1234567 and first["picked"] is True
    assert first["entry"]["key"] == again["entry"]["key"]


def test_unknown_names_fail_listing_the_valid_ones():
    result, out = lookup(scenario="outage", variant="resources", fault="database_down")
    assert result is None
    assert "no fault 'database_down' in outage/resources (outage/dependencies/database_down has it)" in out
    result, out = lookup(scenario="error_spike", variant="dependencies")
    assert result is None and "variants: code, configuration, resources" in out


def test_target_override():
    result, out = lookup(scenario="outage", variant="resources", fault="memory_limits", target="orders-api")
    assert result, out
    assert result["entry"]["target"]["name"] == "orders-api"
    assert result["entry"]["touches"] == [{"kind": "Deployment", "name": "orders-api"}]
