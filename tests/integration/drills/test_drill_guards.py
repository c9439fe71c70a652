"""Refused drills change nothing; interrupted and killed drills are rolled back.

One namespace of its own (opsdrill-guards, set up with setup.yml and deleted afterwards,
or $OPSDRILL_GUARD_NAMESPACE, kept).
"""
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import drill_runner

pytestmark = pytest.mark.drill

REPO = drill_runner.REPO
PLAYBOOK = str(drill_runner.VENV_BIN / "ansible-playbook")


@pytest.fixture(scope="module")
def ns(lab, admin, drill_output):
    given = os.environ.get("OPSDRILL_GUARD_NAMESPACE")
    name = given or "opsdrill-guards"
    assert drill_runner.setup_namespace(name, drill_output) == 0, "setup.yml failed for %s" % name
    yield name
    if not given and os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        drill_runner.delete_namespace(lab, name)


def play(*args, background=False, artifacts=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = [PLAYBOOK, *args]
    if artifacts:
        argv += ["-e", "drill_artifacts_base=%s" % artifacts]
    if background:
        # Output to a file: an unread pipe would block the playbook once full.
        log = open(Path(artifacts or "/tmp") / ("play-%s.log" % uuid.uuid4().hex[:6]), "w+")
        proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        proc.log = log
        return proc
    return subprocess.run(argv, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=900, check=False)


def fingerprint(admin, namespace):
    """What a refused drill must not change: the stack's specs and every drill object."""
    out = {}
    for kind in ("deployments", "services", "secrets", "configmaps", "leases.coordination.k8s.io",
                 "jobs.batch", "serviceaccounts", "roles.rbac.authorization.k8s.io",
                 "persistentvolumeclaims"):
        for item in admin.json("get", kind, "-n", namespace)["items"]:
            meta = item["metadata"]
            if kind.startswith("leases") and not meta["name"].startswith("opsdrill"):
                continue  # leader election renews its leases all the time
            version = meta.get("generation") if kind == "deployments" else meta["resourceVersion"]
            out["%s/%s" % (kind, meta["name"])] = version
    return out


def drill_objects(admin, namespace):
    found = []
    for kind, name in (("configmap", "opsdrill-drill-state"), ("secret", "opsdrill-drill-state"),
                       ("lease", "opsdrill-drill"), ("job", "opsdrill-deadman"), ("role", "opsdrill-deadman")):
        if admin.run("get", kind, name, "-n", namespace, check=False).returncode == 0:
            found.append("%s/%s" % (kind, name))
    return found


def output(proc):
    return proc.stdout if isinstance(proc.stdout, str) else ""


@pytest.mark.parametrize("args, message", [
    (["drill-outage.yml", "-e", "variant=resources", "-e", "fault=no_such_fault"],
     "no fault 'no_such_fault' in outage/resources; faults there: cpu_constraints, memory_limits, "
     "network_problems, storage_issues"),
    (["drill-outage.yml", "-e", "variant=resources", "-e", "fault=database_down"],
     "no fault 'database_down' in outage/resources (outage/dependencies/database_down has it)"),
    (["drill-error-spike.yml", "-e", "variant=dependencies"],
     "unknown variant 'dependencies' for scenario error_spike; variants: code, configuration, resources"),
], ids=["unknown-fault", "fault-of-another-variant", "unknown-variant"])
def test_bad_fault_names_are_refused_listing_the_valid_ones(admin, ns, args, message):
    before = fingerprint(admin, ns)
    proc = play(*args, "-e", "drill_namespace=%s" % ns)
    assert proc.returncode != 0
    assert message in output(proc), output(proc)[-3000:]
    assert fingerprint(admin, ns) == before
    assert drill_objects(admin, ns) == []


@pytest.mark.parametrize("namespace", ["default", "kube-system"])
def test_system_namespaces_are_refused(admin, ns, namespace):
    before = fingerprint(admin, namespace)
    proc = play("drill-outage.yml", "-e", "variant=resources", "-e", "fault=memory_limits",
                "-e", "drill_namespace=%s" % namespace)
    assert proc.returncode != 0
    assert "namespace '%s' is refused: opsdrill never touches default, kube-system" % namespace in output(proc)
    assert fingerprint(admin, namespace) == before
    assert drill_objects(admin, namespace) == []


def test_namespace_without_opt_in_is_refused(admin, ns):
    name = "opsdrill-no-opt-in-%s" % uuid.uuid4().hex[:6]
    admin.run("create", "namespace", name)
    try:
        proc = play("drill-outage.yml", "-e", "variant=resources", "-e", "fault=memory_limits",
                    "-e", "drill_namespace=%s" % name)
        assert proc.returncode != 0
        assert "namespace '%s' has not opted in to drills" % name in output(proc)
        assert drill_objects(admin, name) == []
    finally:
        admin.run("delete", "namespace", name, "--wait=false", check=False)


def test_second_drill_in_a_namespace_is_refused_naming_holder_and_since(admin, ns):
    holder = "%s-20261122T101500Z-beef" % ns
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "opsdrill-drill", "namespace": ns,
                          "annotations": {"opsdrill.io/controller-host": "trainer-laptop",
                                          "opsdrill.io/controller-pid": "4242",
                                          "opsdrill.io/scenario": "outage", "opsdrill.io/variant": "dependencies"}},
             "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3600,
                      "acquireTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
                      "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())}}
    admin.apply(json.dumps(lease))
    try:
        before = fingerprint(admin, ns)
        proc = play("drill-outage.yml", "-e", "variant=resources", "-e", "fault=memory_limits",
                    "-e", "drill_namespace=%s" % ns)
        text = output(proc)
        assert proc.returncode != 0
        assert "namespace %s already has an active drill: Lease opsdrill-drill is held by %s" % (ns, holder) in text
        assert "(outage/dependencies, controller trainer-laptop pid 4242" in text
        assert "since %s" % lease["spec"]["acquireTime"] in text
        assert fingerprint(admin, ns) == before, "the refused drill changed the namespace"
        assert admin.json("get", "lease", "opsdrill-drill", "-n", ns)["spec"]["holderIdentity"] == holder
    finally:
        admin.run("delete", "lease", "opsdrill-drill", "-n", ns, check=False)


def test_check_mode_shows_the_diff_and_changes_nothing(admin, ns, tmp_path):
    before = fingerprint(admin, ns)
    proc = play("drill-outage.yml", "-e", "variant=resources", "-e", "fault=memory_limits",
                "-e", "drill_namespace=%s" % ns, "--check", "--diff", artifacts=str(tmp_path))
    text = output(proc)
    assert proc.returncode == 0, text[-3000:]
    assert "--- before: Deployment/backend-api (live)" in text
    assert "+            memory: 12Mi" in text
    assert "resources.limits.memory: '96Mi' != '12Mi'" in text
    assert fingerprint(admin, ns) == before
    assert drill_objects(admin, ns) == []
    assert not list(tmp_path.rglob("timeline.jsonl")), "check mode writes no timeline"


def _wait_for_event(artifacts, event, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in Path(artifacts).rglob("timeline.jsonl"):
            if any(json.loads(line)["event"] == event for line in path.read_text().splitlines() if line.strip()):
                return path.parent
        if proc.poll() is not None:
            proc.log.seek(0)
            raise AssertionError("the drill ended before %s:\n%s" % (event, proc.log.read()[-3000:]))
        time.sleep(1)
    raise AssertionError("no %s within %d s" % (event, timeout))


def _postgres_replicas(admin, ns):
    return admin.json("get", "deployment", "postgres", "-n", ns)["spec"]["replicas"]


def test_rollback_playbook_restores_a_killed_run(admin, ns, tmp_path):
    """SIGKILL of ansible-playbook with the controller watchdog off (a lost controller):
    the namespace stays broken and armed until rollback.yml restores it."""
    proc = play("drill-outage.yml", "-e", "variant=dependencies", "-e", "fault=database_down",
                "-e", "drill_namespace=%s" % ns, "-e", "response_window_s=600", "-e", "drill_engine_watchdog=false",
                background=True, artifacts=str(tmp_path))
    try:
        _wait_for_event(tmp_path, "fault_injected", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _postgres_replicas(admin, ns) == 0
    assert set(drill_objects(admin, ns)) >= {"configmap/opsdrill-drill-state", "lease/opsdrill-drill",
                                             "job/opsdrill-deadman"}
    rollback = play("rollback.yml", "-e", "drill_namespace=%s" % ns, artifacts=str(tmp_path))
    assert rollback.returncode == 0, output(rollback)[-3000:]
    assert _postgres_replicas(admin, ns) == 1
    assert drill_objects(admin, ns) == []
    assert drill_runner.steady_problems(drill_runner.KubectlClient(admin.kubectl, admin.kubeconfig), ns) == []
    again = play("rollback.yml", "-e", "drill_namespace=%s" % ns, artifacts=str(tmp_path))
    assert again.returncode == 0 and "has no drill state: nothing to restore" in output(again)


def test_interrupted_drill_is_rolled_back_by_the_watchdog(admin, ns, tmp_path):
    """Ctrl-C (SIGINT to ansible-playbook's process group): Ansible runs no always block;
    the controller watchdog restores the namespace, verifies it and records the interruption."""
    proc = play("drill-outage.yml", "-e", "variant=dependencies", "-e", "fault=database_down",
                "-e", "drill_namespace=%s" % ns, "-e", "response_window_s=600",
                background=True, artifacts=str(tmp_path))
    artifacts = _wait_for_event(tmp_path, "response_window_started", proc)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    admin.wait_for("the watchdog's rollback", lambda: _postgres_replicas(admin, ns) == 1 and
                   drill_objects(admin, ns) == ["configmap/opsdrill-drill-state"], timeout=120)
    state = json.loads(admin.json("get", "configmap", "opsdrill-drill-state", "-n", ns)["data"]["state.json"])
    assert state["armed"] is False and state["restore"]["ok"] and state["restore"]["by"] == "deadman"
    # The watchdog verifies before it disarms and finishes (its rollouts may take a while).
    admin.wait_for("the watchdog's drill_finished", lambda: "drill_finished" in [
        json.loads(line)["event"] for line in (artifacts / "timeline.jsonl").read_text().splitlines()], timeout=300)
    events = [json.loads(line) for line in (artifacts / "timeline.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[-8:] == ["response_window_ended", "drill_failed", "rollback_started", "rollback_finished",
                          "steady_state_restored", "verify_passed", "deadman_disarmed", "drill_finished"], names
    assert events[names.index("response_window_ended")]["data"]["reason"] == "interrupted"
    assert events[names.index("verify_passed")]["data"] == {"by": "watchdog", "ok": True, "differences": [],
                                                            "problems": []}
    assert events[-1]["data"] == {"result": "interrupted", "restored_by": "watchdog"}
    admin.wait_for("the steady state", lambda: not drill_runner.steady_problems(
        drill_runner.KubectlClient(admin.kubectl, admin.kubeconfig), ns), timeout=180)
    # The watchdog keeps the drill state (with its outcome); rollback.yml verifies and clears it.
    rollback = play("rollback.yml", "-e", "drill_namespace=%s" % ns, artifacts=str(tmp_path))
    assert rollback.returncode == 0, output(rollback)[-3000:]
    assert drill_objects(admin, ns) == []


def test_variant_role_entry_points_inject_and_roll_back(admin, ns, tmp_path):
    before = admin.json("get", "service", "backend-api", "-n", ns)["spec"]["selector"]
    proc = play("tests/integration/drills/playbooks/variant_roles.yml", "-e", "drill_namespace=%s" % ns,
                "-e", "variant_resources_artifacts_base=%s" % tmp_path)
    assert proc.returncode == 0, output(proc)[-3000:]
    assert admin.json("get", "service", "backend-api", "-n", ns)["spec"]["selector"] == before
    assert drill_objects(admin, ns) == []
    briefing = list(tmp_path.rglob("briefing.md"))
    assert briefing and "Service selector matches no pod" in briefing[0].read_text()
    assert oct(briefing[0].stat().st_mode & 0o777) == "0o600"
