"""Bad input on the command line of every playbook (drill, setup, teardown, rollback, lab),
run for real against the lab: each run fails, its first error line names the variable or
file, and the API server's audit log shows no write during the attempt.

The audit log is read here (not through the product): a write is a create, update, patch
or delete by anyone but the cluster's own components (kubelet, controllers, scheduler),
i.e. by the admin the playbooks use or by a drill's ServiceAccount.
"""
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

import drill_runner

pytestmark = pytest.mark.drill

REPO = drill_runner.REPO
PLAYBOOK = str(drill_runner.VENV_BIN / "ansible-playbook")
WRITES = ("create", "update", "patch", "delete", "deletecollection")
# The cluster's own components write all the time; a playbook's writes come from anyone else.
SYSTEM_USERS = ("system:node:", "system:kube-", "system:apiserver", "system:serviceaccount:kube-system:")


def _files(tmp):
    broken_json = tmp / "desk-broken.json"
    broken_json.write_text("[{\"ts\": ")
    big = tmp / "desk-big.json"
    big.write_text("[" + " " * (3 * 1024 * 1024) + "]")
    wrong_entry = tmp / "desk-entry.json"
    wrong_entry.write_text(json.dumps([{"ts": "yesterday", "author": "trainee-1", "kind": "status_update",
                                        "text": "Backend down"}]))
    catalog = tmp / "team-faults.yml"
    catalog.write_text("- scenario: outage\n  variant: resources\n  name: Bad Name\n")
    return {"broken_json": broken_json, "big": big, "wrong_entry": wrong_entry, "catalog": catalog}


def cases(ns, files):
    """(id, playbook, extra args, text the first error line must hold)."""
    outage, spike = "drill-outage.yml", "drill-error-spike.yml"
    return [
        ("seed-not-a-number", outage, ["drill_seed=abc"], "drill_seed: 'abc' is not an integer from 0 to 4294967295"),
        ("seed-negative", outage, ["drill_seed=-5"], "drill_seed: '-5' is out of range"),
        ("seed-bool-json", outage, ['{"drill_seed": true}'], "drill_seed: True is not an integer"),
        ("window-not-a-number", outage, ["response_window_s=abc"], "response_window_s: 'abc' is not an integer"),
        ("window-negative", outage, ["response_window_s=-5"], "response_window_s: '-5' is out of range"),
        ("window-huge", outage, ["response_window_s=999999999"], "response_window_s: '999999999' is out of range"),
        ("window-fraction", outage, ["response_window_s=1.5"], "response_window_s: '1.5' is not an integer"),
        ("typo-variant", outage, ["varaint=code"], "varaint: unknown variable for drill.yml (did you mean variant?)"),
        ("typo-role-var", outage, ["drill_engine_pol_s=3"],
         "drill_engine_pol_s: unknown variable for drill.yml (did you mean drill_engine_poll_s?)"),
        ("scenario-override", outage, ["scenario=error_spike"],
         "scenario: drill-outage.yml runs scenario outage; for error_spike run playbooks/drill.yml -e scenario=error_spike"),
        ("unknown-variant", spike, ["variant=dependencies"],
         "variant: unknown variant 'dependencies' for scenario error_spike; variants: code, configuration, resources"),
        ("unknown-fault", outage, ["variant=resources", "fault=no_such_fault"],
         "fault: no fault 'no_such_fault' in outage/resources"),
        ("fault-of-other-scenario", outage, ["fault=race_conditions"],
         "fault: fault 'race_conditions' belongs to scenario error_spike (error_spike/code/race_conditions), "
         "not outage: run drill-error-spike.yml -e variant=code -e fault=race_conditions"),
        ("namespace-invalid", outage, ["drill_namespace=Seo_Tool"], "drill_namespace: 'Seo_Tool' is not a Kubernetes namespace name"),
        ("target-unknown", outage, ["fault=memory_limits", "target=no-such-workload", "drill_namespace=%s" % ns],
         "target: Deployment/no-such-workload does not exist in namespace '%s'" % ns),
        ("target-malformed", outage, ["target=Deployment/a/b"], "target: 'Deployment/a/b' is not a workload name or Kind/name"),
        ("target-kind", outage, ["target=Pod/backend-api"], "target: kind 'Pod' is not one a fault can aim at"),
        ("drill-id-path", outage, ["drill_id=../../etc"], "drill_id: '../../etc' is not letters, digits"),
        ("artifacts-on-proc", outage, ["drill_artifacts_base=/proc/x"],
         "drill_artifacts_base: '/proc/x' is on the proc pseudo file system"),
        ("desk-missing", outage, ["opsdrill_desk_file=/nonexistent/desk.json"],
         "opsdrill_desk_file: file /nonexistent/desk.json does not exist"),
        ("desk-not-json", outage, ["opsdrill_desk_file=%s" % files["broken_json"]],
         "opsdrill_desk_file: %s is not valid: not JSON" % files["broken_json"]),
        ("desk-too-large", outage, ["opsdrill_desk_file=%s" % files["big"]],
         "opsdrill_desk_file: file %s is 3145730 bytes; the limit is 2097152 bytes" % files["big"]),
        ("desk-bad-entry", outage, ["opsdrill_desk_file=%s" % files["wrong_entry"]],
         "opsdrill_desk_file: %s is not valid" % files["wrong_entry"]),
        ("audit-log-missing", outage, ["opsdrill_audit_log=/nonexistent/audit.log"],
         "opsdrill_audit_log: file /nonexistent/audit.log does not exist"),
        ("kubeconfig-missing", outage, ["opsdrill_kubeconfig=/nonexistent/kubeconfig"],
         "opsdrill_kubeconfig: file /nonexistent/kubeconfig does not exist"),
        ("trainees-not-a-list", outage, ['{"opsdrill_trainees": {"a": 1}}'], "opsdrill_trainees: {'a': 1} is not a list"),
        ("poll-zero", spike, ["drill_engine_poll_s=0"], "drill_engine_poll_s: '0' is out of range"),
        ("catalog-invalid", outage, ['{"drill_engine_catalog_paths": ["%s"]}' % files["catalog"]],
         "drill_engine_catalog_paths: %s is not valid" % files["catalog"]),
        ("alert-for-not-a-duration", outage, ['{"monitoring_alert_for": {"ServiceDown": "soon"}}'],
         "monitoring_alert_for: 'soon' is not a duration"),
        ("unknown-scenario", "drill.yml", ["scenario=latency"],
         "scenario: unknown scenario 'latency'; scenarios: error_spike, outage"),
        ("setup-namespace", "setup.yml", ["drill_namespace=Bad_NS"], "drill_namespace: 'Bad_NS' is not a Kubernetes namespace name"),
        ("setup-typo", "setup.yml", ["test_services_replicaz=2"], "test_services_replicaz: unknown variable for setup.yml"),
        ("setup-choice", "setup.yml", ["monitoring_mode=bogus"], "monitoring_mode: 'bogus' is not one of: standalone"),
        ("setup-rps", "setup.yml", ["test_services_traffic_rps=lots"], "test_services_traffic_rps: 'lots' is not"),
        ("teardown-typo", "teardown.yml", ["drill_namspace=%s" % ns],
         "drill_namspace: unknown variable for teardown.yml (did you mean drill_namespace?)"),
        ("teardown-choice", "teardown.yml", ["test_services_state=gone"], "test_services_state: 'gone' is not one of"),
        ("rollback-namespace", "rollback.yml", ["drill_namespace=-bad-"], "drill_namespace: '-bad-' is not a Kubernetes"),
        ("rollback-unknown", "rollback.yml", ["force=true"], "force: unknown variable for rollback.yml"),
        ("schedule-cron", "schedule.yml", ['{"drill_schedule_cron": "every monday"}'],
         "drill_schedule_cron: 'every monday' is not a cron schedule"),
        ("schedule-unknown", "schedule.yml", ["drill_schedule_crontab=@weekly"],
         "drill_schedule_crontab: unknown variable for schedule.yml (did you mean drill_schedule_cron?)"),
        ("awx-no-controller-input", "awx.yml", ["opsdrill_awx_scm_url="],
         "Give opsdrill_awx_scm_url (this repository), opsdrill_awx_k8s_host and opsdrill_awx_k8s_bearer_token"),
        ("setup-runner-account", "setup.yml", ["drill_runner_account=Runner!"],
         "drill_runner_account: 'Runner!' is not a Kubernetes object name"),
        ("lab-state", "lab.yml", ["lab_state=maybe"], "lab_state: 'maybe' is not one of: present, absent"),
        ("lab-unknown", "lab.yml", ["state=absent"], "state: unknown variable for lab.yml"),
        ("lab-trainee-name", "lab.yml", ['{"lab_trainees": ["x/O=system:masters"]}'],
         "lab_trainees: 'x/O=system:masters' is not a trainee name"),
    ]


def _parse_time(text):
    return datetime.strptime(text[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").timestamp() - time.timezone \
        if "." in text else datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S").timestamp() - time.timezone


def writes_between(audit_log, offset, start, end):
    """Write requests in the audit log (from byte ``offset``) received in [start, end]."""
    found = []
    with open(audit_log, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITES:
                continue
            user = (event.get("user") or {}).get("username") or ""
            if user.startswith(SYSTEM_USERS):
                continue
            at = _parse_time(event["requestReceivedTimestamp"])
            if start - 0.5 <= at <= end + 0.5:
                ref = event.get("objectRef") or {}
                found.append("%s %s %s/%s/%s" % (user, event["verb"], ref.get("namespace"),
                                                 ref.get("resource"), ref.get("name")))
    return found


def _run(case, tmp):
    _id, playbook, extra, _text = case
    argv = [PLAYBOOK, playbook]
    for item in extra:
        argv += ["-e", item]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               HOME=str(tmp))  # a refused drill writes nothing under the user's home either
    started = time.time()
    proc = subprocess.run(argv, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, started, time.time()


@pytest.fixture(scope="module")
def attempts(lab, guard_namespace, drill_output, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    all_cases = cases(guard_namespace, _files(tmp))
    offset = os.path.getsize(lab["audit_log"])
    homes = [tmp_path_factory.mktemp("home") for _case in all_cases]
    started = time.time()
    # Side by side: each refused run is mostly Ansible's start-up.
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(_run, all_cases, homes))
    print("%d bad inputs in %.1f s" % (len(all_cases), time.time() - started))
    time.sleep(2)  # the audit log is written after the response
    # For the record (and the closing note): each case with its first error line and writes.
    lines = ["| case | command | rc | audit-log writes | first error line |", "|---|---|---|---|---|"]
    for case, (proc, start, end) in zip(all_cases, runs):
        first = _first_error_line(proc.stdout + proc.stderr).replace("[ERROR]: Task failed: Action failed: ", "")
        lines.append("| %s | `%s %s` | %d | %d | %s |" % (
            case[0], case[1], " ".join("-e " + e for e in case[2]), proc.returncode,
            len(writes_between(lab["audit_log"], offset, start, end)), first.replace("|", "/")[:240]))
    (drill_output / "bad-input.md").write_text("\n".join(lines) + "\n")
    return {case[0]: (case, run, home) for case, run, home in zip(all_cases, runs, homes)}, offset


def _first_error_line(text):
    for line in text.splitlines():
        if "[ERROR]" in line or line.startswith("fatal:"):
            return line
    return ""


CASE_IDS = [c[0] for c in cases("seo-tool", {k: "f" for k in ("broken_json", "big", "wrong_entry", "catalog")})]


def test_at_least_thirty_bad_inputs_over_every_playbook():
    playbooks = {c[1] for c in cases("seo-tool", {k: "f" for k in ("broken_json", "big", "wrong_entry", "catalog")})}
    assert len(CASE_IDS) >= 30 and len(set(CASE_IDS)) == len(CASE_IDS)
    assert playbooks == {"drill-outage.yml", "drill-error-spike.yml", "drill.yml", "setup.yml", "teardown.yml",
                         "rollback.yml", "lab.yml", "schedule.yml", "awx.yml"}


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_is_refused_naming_the_variable_and_writes_nothing(lab, attempts, case_id):
    runs, offset = attempts
    (_id, playbook, extra, text), (proc, started, ended), home = runs[case_id]
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, "%s %s was accepted:\n%s" % (playbook, extra, out[-2000:])
    first = _first_error_line(out)
    assert text in first, "first error line of %s %s:\n  %s\nexpected: %s\n%s" % (playbook, extra, first, text, out[-3000:])
    assert writes_between(lab["audit_log"], offset, started, ended) == []
    # A refused drill may leave the trainer a timeline of its refusal, never a snapshot.
    assert not list(home.rglob("drill-state.json")), "a refused drill took a snapshot"
