"""Refused drills change nothing; interrupted and killed drills are rolled back.

In the namespace the documented commands use (conftest.guard_namespace: seo-tool).
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
def ns(guard_namespace):
    return guard_namespace


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
    for where in (namespace, drill_runner.snapshot.control_namespace(namespace)):
        for kind in ("deployments", "services", "secrets", "configmaps", "leases.coordination.k8s.io",
                     "jobs.batch", "serviceaccounts", "roles.rbac.authorization.k8s.io",
                     "persistentvolumeclaims"):
            for item in admin.json("get", kind, "-n", where)["items"]:
                meta = item["metadata"]
                if kind.startswith("leases") and not meta["name"].startswith("opsdrill"):
                    continue  # leader election renews its leases all the time
                version = meta.get("generation") if kind == "deployments" else meta["resourceVersion"]
                out["%s/%s/%s" % (where, kind, meta["name"])] = version
    return out


def drill_objects(admin, namespace):
    """The drill's own objects, in the control namespace and in the drill namespace."""
    control = drill_runner.snapshot.control_namespace(namespace)
    found = []
    for kind, name, where in (("configmap", "opsdrill-drill-state", control),
                              ("secret", "opsdrill-drill-state", control), ("secret", "opsdrill-drill-key", control),
                              ("lease", "opsdrill-drill", control), ("job", "opsdrill-deadman", control),
                              ("role", "opsdrill-deadman", control), ("role", "opsdrill-deadman", namespace),
                              ("configmap", "opsdrill-deadman-code", control),
                              ("configmap", "opsdrill-drill-state", namespace), ("lease", "opsdrill-drill", namespace)):
        if admin.run("get", kind, name, "-n", where, check=False).returncode == 0:
            found.append("%s/%s" % (kind, name) if where == control else "%s:%s/%s" % (where, kind, name))
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
    control = drill_runner.snapshot.control_namespace(ns)
    admin.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": control, "labels": {"opsdrill.io/control-for": ns, "app.kubernetes.io/part-of": "opsdrill",
                                    "pod-security.kubernetes.io/enforce": "restricted"}}}))
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "opsdrill-drill", "namespace": control,
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
        assert admin.json("get", "lease", "opsdrill-drill", "-n", control)["spec"]["holderIdentity"] == holder
    finally:
        admin.run("delete", "lease", "opsdrill-drill", "-n", control, check=False)


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


def _processes_mentioning(text):
    """Processes whose command line contains ``text`` (this run's unique artifacts path)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/stat" % entry) as handle:
                zombie = handle.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if text in cmdline and not zombie:
            found.append("%s: %s" % (entry, cmdline[:160]))
    return found


def test_killed_drill_is_rolled_back_by_the_watchdog_and_leaves_nothing(admin, ns, tmp_path):
    """SIGKILL of the ansible-playbook process alone (kill -9, the OOM killer): Ansible runs
    nothing more, and its worker (polling the response window) is orphaned. The controller
    watchdog kills the orphaned worker, restores the namespace, verifies it, and removes every
    drill object; no process of the run is left."""
    proc = play("drill-outage.yml", "-e", "variant=dependencies", "-e", "fault=database_down",
                "-e", "drill_namespace=%s" % ns, "-e", "response_window_s=600",
                background=True, artifacts=str(tmp_path))
    artifacts = _wait_for_event(tmp_path, "response_window_started", proc)
    time.sleep(2)  # the worker is in the response window's steady-state loop
    assert len(_processes_mentioning(str(tmp_path))) >= 3, "controller, worker and watchdog"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    admin.wait_for("the watchdog's drill_finished", lambda: "drill_finished" in [
        json.loads(line)["event"] for line in (artifacts / "timeline.jsonl").read_text().splitlines()], timeout=300)
    assert _postgres_replicas(admin, ns) == 1
    # Nothing of the drill is left where the team could read it (the state names the fault).
    assert drill_objects(admin, ns) == []
    admin.wait_for("every process of the run to end (worker and watchdog included)",
                   lambda: _processes_mentioning(str(tmp_path)) == [], timeout=30)
    events = [json.loads(line) for line in (artifacts / "timeline.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[-8:] == ["response_window_ended", "drill_failed", "rollback_started", "rollback_finished",
                          "steady_state_restored", "verify_passed", "deadman_disarmed", "drill_finished"], names
    assert events[names.index("response_window_ended")]["data"]["reason"] == "interrupted"
    assert events[names.index("rollback_started")]["data"]["killed_workers"], "the orphaned worker was not killed"
    assert events[names.index("verify_passed")]["data"] == {"by": "watchdog", "ok": True, "differences": [],
                                                            "problems": []}
    removed = events[names.index("deadman_disarmed")]["data"]["removed"]
    assert {"ConfigMap/opsdrill-drill-state", "Job/opsdrill-deadman"} <= set(removed), removed
    assert events[-1]["data"] == {"result": "interrupted", "restored_by": "watchdog"}
    admin.wait_for("the steady state", lambda: not drill_runner.steady_problems(
        drill_runner.KubectlClient(admin.kubectl, admin.kubeconfig), ns), timeout=180)
    # rollback.yml afterwards finds nothing to restore and changes nothing.
    rollback = play("rollback.yml", "-e", "drill_namespace=%s" % ns, artifacts=str(tmp_path))
    assert rollback.returncode == 0, output(rollback)[-3000:]
    assert "has no drill state: nothing to restore" in output(rollback)


def test_in_cluster_switch_restores_from_the_control_namespace_when_controller_and_watchdog_die(
        admin, ns, tmp_path):
    """SIGKILL of ansible-playbook, its workers and the controller watchdog: only the Job in the
    control namespace is left. At the drill's hard deadline it restores the drill namespace with
    its own ServiceAccount (Roles in both namespaces) and records the outcome in the state."""
    proc = play("drill-outage.yml", "-e", "variant=dependencies", "-e", "fault=database_down",
                "-e", "drill_namespace=%s" % ns, "-e", "response_window_s=600", "-e", "drill_engine_deadline_s=60",
                background=True, artifacts=str(tmp_path))
    _wait_for_event(tmp_path, "fault_injected", proc)
    killed_at = time.time()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    for line in _processes_mentioning(str(tmp_path)):   # the watchdog runs in a session of its own
        os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
    admin.wait_for("every process of the run to end", lambda: _processes_mentioning(str(tmp_path)) == [], timeout=30)
    assert _postgres_replicas(admin, ns) == 0, "the fault is still in place once nobody on the controller is left"
    control = drill_runner.snapshot.control_namespace(ns)

    def restored_by_the_job():
        state = json.loads(admin.json("get", "configmap", "opsdrill-drill-state", "-n", control)["data"]["state.json"])
        return state if (state.get("restore") or {}).get("by") == "deadman" else None
    state = admin.wait_for("the Job's restore at the deadline", restored_by_the_job, timeout=240, interval=3)
    assert state["restore"]["ok"] is True and state["armed"] is False, state["restore"]
    assert time.time() - killed_at < 240
    assert _postgres_replicas(admin, ns) == 1                       # from the cluster, not the state
    rollback = play("rollback.yml", "-e", "drill_namespace=%s" % ns, artifacts=str(tmp_path))
    assert rollback.returncode == 0, output(rollback)[-3000:]
    assert drill_objects(admin, ns) == []
    admin.wait_for("the steady state", lambda: not drill_runner.steady_problems(
        drill_runner.KubectlClient(admin.kubectl, admin.kubeconfig), ns), timeout=180)


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
