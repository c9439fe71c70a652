"""The engine modules' actions run them in the controller's worker (plugin_utils/in_process.py).

Checked with a real ansible-playbook run: the same task in-process and as a module (a task
``environment`` forces the module) gives the same result, and only the module run starts
an AnsiballZ payload (Ansible's own -vvv log says which ran)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.opsdrill.drills.plugins.plugin_utils import in_process

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
FIXTURES = os.path.join(REPO, "tests", "unit", "scoring", "fixtures")
BIN = os.path.dirname(sys.executable)

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Score in the worker
      opsdrill.drills.drill_scorecard:
        artifacts_dir: %(here)s
        audit_log: %(audit)s
        catalog_entry_file: %(catalog)s
      register: here
    - name: Score as a module
      opsdrill.drills.drill_scorecard:
        artifacts_dir: %(there)s
        audit_log: %(audit)s
        catalog_entry_file: %(catalog)s
      environment:
        OPSDRILL_UNUSED: "1"
      register: there
    - name: A cluster that is not there, in the worker
      opsdrill.drills.drill_state_info:
        namespace: seo-tool
        kubeconfig: /nonexistent/kubeconfig
      register: here_fail
      ignore_errors: true
    - name: A cluster that is not there, as a module
      opsdrill.drills.drill_state_info:
        namespace: seo-tool
        kubeconfig: /nonexistent/kubeconfig
      environment:
        OPSDRILL_UNUSED: "1"
      register: there_fail
      ignore_errors: true
    - name: A bad option value, in the worker
      opsdrill.drills.drill_wait:
        namespace: seo-tool
        condition: sometime
      register: here_bad
      ignore_errors: true
    - name: Delegated to a host over ssh, the module must run there
      opsdrill.drills.drill_state_info:
        namespace: seo-tool
        kubeconfig: /nonexistent/kubeconfig
      delegate_to: elsewhere
      vars:
        ansible_host: 127.0.0.1
        ansible_port: 1
        ansible_connection: ssh
      register: delegated
      ignore_unreachable: true
    - name: Keep the results
      ansible.builtin.copy:
        dest: %(out)s
        content: "{{ {'here': here, 'there': there, 'here_fail': here_fail, 'there_fail': there_fail,
                      'here_bad': here_bad, 'delegated': delegated} | to_json }}"
        mode: "0600"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in-process")
    collections = tmp / "collections" / "ansible_collections" / "opsdrill"
    collections.mkdir(parents=True)
    os.symlink(REPO, str(collections / "drills"))
    for name in ("here", "there"):
        (tmp / name).mkdir()
        shutil.copy(os.path.join(FIXTURES, "timeline-recovered.jsonl"), str(tmp / name / "timeline.jsonl"))
    out = tmp / "results.json"
    playbook = tmp / "play.yml"
    playbook.write_text(PLAYBOOK % dict(here=tmp / "here", there=tmp / "there", out=out,
                                        audit=os.path.join(FIXTURES, "audit-recovered.log"),
                                        catalog=os.path.join(REPO, "plugins", "module_utils", "catalog", "faults.yml")))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


def _comparable(result, base):
    drop = ("invocation", "changed", "reports", "scorecard_file")
    text = json.dumps({k: v for k, v in result.items() if k not in drop}).replace(base, "<dir>")
    return json.loads(text)


def test_only_the_module_run_starts_an_ansiballz_payload(runs):
    _results, log = runs
    assert log.count("AnsiballZ_drill_scorecard.py") >= 1
    assert log.count("AnsiballZ_drill_state_info.py") >= 1
    assert "AnsiballZ_drill_wait.py" not in log
    # Two scorecard tasks, one payload: the worker's run wrote none.
    assert len({line for line in log.splitlines() if "PUT " in line and "AnsiballZ_drill_scorecard" in line}) == 1


def test_worker_and_module_give_the_same_result(runs):
    results, _log = runs
    here, there = results["here"], results["there"]
    assert here["changed"] is True and there["changed"] is True
    assert _comparable(here, "/here") == _comparable(there, "/there")
    assert here["summary"]["drill_id"] == "seo-tool-20261122T173000Z"


def test_worker_and_module_fail_alike(runs):
    results, _log = runs
    assert results["here_fail"]["failed"] and results["there_fail"]["failed"]
    assert results["here_fail"]["msg"] == results["there_fail"]["msg"]
    assert "/nonexistent/kubeconfig" in results["here_fail"]["msg"]


def test_bad_option_is_refused_with_the_choices(runs):
    results, _log = runs
    bad = results["here_bad"]
    assert bad["failed"]
    assert "condition" in bad["msg"] and "symptom" in bad["msg"] and "alert" in bad["msg"]


def test_stand_in_exits_like_ansible_module():
    module = in_process.ControllerModule({"a": 1}, check_mode=True)
    with pytest.raises(in_process.ModuleDone) as done:
        try:
            module.fail_json(msg="broken", rc=3)
        except Exception:  # noqa: BLE001 - a module's own handler must not swallow its exit
            pytest.fail("fail_json was caught by except Exception")
    assert done.value.result == {"failed": True, "msg": "broken", "rc": 3}
    module.warn("careful")
    assert module.warnings == ["careful"] and module.check_mode is True


def test_stand_in_runs_commands_without_a_shell():
    rc, out, _err = in_process.ControllerModule.run_command("printf '%s' 'a;b'")
    assert (rc, out) == (0, "a;b")
    rc, _out, err = in_process.ControllerModule.run_command(["/nonexistent/cmd"])
    assert rc == 127 and "nonexistent" in err


def test_a_task_delegated_over_ssh_is_not_run_in_the_worker(runs):
    results, _log = runs
    assert results["delegated"].get("unreachable") is True, results["delegated"]
    assert "ssh" in results["delegated"]["msg"]
