"""Restore planning and execution against the in-memory fake API, the drill state, the
restore lock and the dead-man's switch."""

import copy
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import fault_handlers as fh
from ansible_collections.opsdrill.drills.plugins.module_utils import runtime
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import errors
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import ops as op_types
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore as rs
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot as snap

NS = "seo-tool"
CTX = {"namespace": NS, "now": "2026-11-22T17:30:00Z", "drill_id": "d1"}


def no_sleep(_seconds):
    return None


KEY = b"0123456789abcdef0123456789abcdef"


def touches_of(entry):
    return ["%s/%s" % (t["kind"], t["name"]) for t in entry["touches"]]


def inject(api, entry):
    """What the engine does: snapshot the touched objects, record, plan, apply."""
    refs = touches_of(entry)
    live = api.objects(refs)
    objects = [snap.normalise(live[r]) for r in refs]
    ops = fh.plan(entry["steps"], live, CTX)
    state = {"drill_id": "d1", "scenario": entry["scenario"], "variant": entry["variant"],
             "fault": entry["name"], "started": 0, "deadline": 10, "armed": True,
             "phase": "injected", "touches": refs, "created": fh.created_refs(ops),
             "post_restore": entry["rollback"]}
    op_types.apply_ops(api, NS, ops, sleep=no_sleep)
    return state, objects


# -- planning --------------------------------------------------------------------------

def test_plan_nothing_when_unchanged(stack):
    objects = [stack["Deployment/redis"], stack["Service/redis"]]
    assert restore_plan.plan_restore(objects, dict(stack)) == []


def test_plan_recreate_replace_delete_and_post(stack):
    live = dict(stack)
    live["Service/redis"] = None
    changed = copy.deepcopy(stack["Deployment/redis"])
    changed["spec"]["replicas"] = 0
    live["Deployment/redis"] = changed
    live["Service/backend-api-canary"] = {"kind": "Service", "metadata": {
        "name": "backend-api-canary", "labels": {"opsdrill.io/created-by": "fault"}}}
    post = [{"op": "redis_flush", "service": "redis"}]
    ops = restore_plan.plan_restore([stack["Deployment/redis"], stack["Service/redis"]], live,
                                    created=["Service/backend-api-canary"], post_restore=post)
    assert [op_types.describe_op(o) for o in ops] == [
        "create Service/redis", "replace Deployment/redis (1 difference)",
        "delete Service/backend-api-canary", "redis FLUSHDB on redis:6379"]
    assert "clusterIP" not in ops[0]["object"]["spec"]
    assert ops[1]["object"]["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
    assert ops[1]["changes"] == ["Deployment/redis: spec.replicas: 1 != 0"]


def test_plan_orders_config_before_workloads(stack):
    live = {ref: None for ref in stack}
    ops = restore_plan.plan_restore(list(stack.values()), live)
    kinds = [o["object"]["kind"] for o in ops]
    assert kinds.index("Secret") < kinds.index("Service") < kinds.index("Deployment")


def test_plan_skips_created_objects_already_being_deleted(stack):
    live = {"PersistentVolumeClaim/c": {"kind": "PersistentVolumeClaim", "metadata": {
        "name": "c", "labels": {"opsdrill.io/created-by": "fault"},
        "deletionTimestamp": "2026-11-22T17:40:00Z"}}}
    assert restore_plan.plan_restore([], live, created=["PersistentVolumeClaim/c"]) == []


def test_plan_never_deletes_what_opsdrill_did_not_create(stack):
    ops = restore_plan.plan_restore([], dict(stack), created=["Service/redis", {"kind": "Service",
                                                                                "name": "gone"}])
    assert [op_types.describe_op(o) for o in ops] == ["delete Service/gone"]


# -- every catalog fault: inject, see it, restore exactly, restore again ------------------

@pytest.mark.parametrize("key", catalog.load().keys())
def test_inject_then_restore_every_fault(api, key):
    entry = catalog.lookup(*key.split("/"))
    before = api.objects(touches_of(entry))
    state, objects = inject(api, entry)
    after = api.objects(touches_of(entry))
    assert snap.diff(objects, after), "%s changed nothing visible" % key
    for ref in state["created"]:
        assert ref.split("/", 1)[1] in json.dumps(api.store[ref]["metadata"])

    outcome = restore_plan.restore(api, NS, state, objects, sleep=no_sleep)
    assert outcome["ok"], outcome
    assert outcome["remaining"] == [] and outcome["error"] is None
    assert snap.diff(list(before.values()), api.objects(touches_of(entry))) == []
    for ref in state["created"]:
        assert ref not in api.store
    if entry["rollback"]:
        assert all(op_types.describe_op(op) in outcome["actions"] for op in entry["rollback"])
        assert not [r for r in api.store if r.startswith("Pod/")]

    if entry["rollback"]:
        assert outcome["post_restore_done"] is True
        state["post_restore_done"] = True       # what run_restore records in the state
    again = restore_plan.restore(api, NS, state, objects, sleep=no_sleep)
    assert again["actions"] == [] and again["ok"] and again["remaining"] == []


def test_restore_after_the_team_deleted_and_edited_things(api, stack):
    entry = catalog.lookup("outage", "dependencies", "network_issues")
    state, objects = inject(api, entry)
    api.delete("Service", "redis")                       # the team deleted it
    dep = api.get("Deployment", "backend-api")
    dep["spec"]["replicas"] = 5                          # ... and scaled the backend
    api.replace(dep)
    outcome = restore_plan.restore(api, NS, state, objects, sleep=no_sleep)
    assert outcome["ok"]
    assert "create Service/redis" in outcome["actions"]
    assert api.get("Deployment", "backend-api")["spec"]["replicas"] == 2
    assert snap.diff(objects, api.objects(touches_of(entry))) == []


def test_restore_retries_conflicts(api, stack):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    state, objects = inject(api, entry)
    api.conflicts["Deployment/backend-api"] = 3          # the controller keeps writing status
    outcome = restore_plan.restore(api, NS, state, objects, sleep=no_sleep)
    assert outcome["ok"], outcome
    assert snap.diff(objects, api.objects(touches_of(entry))) == []


def test_restore_reports_what_remains(api, stack):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    state, objects = inject(api, entry)
    api.conflicts["Deployment/backend-api"] = 100
    outcome = restore_plan.restore(api, NS, state, objects, sleep=no_sleep, rounds=2)
    assert not outcome["ok"]
    assert "kept changing" in outcome["error"]
    assert any("limits.memory: '96Mi' != '12Mi'" in line for line in outcome["remaining"])


def test_apply_ops_records_creates_and_names_failures(api):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}
    result = op_types.apply_ops(api, NS, [{"op": "create", "object": svc}])
    assert result["created"] == ["Service/x"]
    with pytest.raises(errors.RestoreError, match=r"create Service/x failed: HTTP 409 AlreadyExists"):
        op_types.apply_ops(api, NS, [{"op": "create", "object": svc}])


def test_apply_replace_without_resource_version_fetches_it(api, stack):
    body = snap.normalise(stack["Deployment/redis"])
    body["spec"]["replicas"] = 0
    op_types.apply_ops(api, NS, [{"op": "replace", "object": body}])
    assert api.get("Deployment", "redis")["spec"]["replicas"] == 0


def test_redis_flush_runs_redis_cli_in_a_one_shot_pod(api, monkeypatch):
    created = []
    real_create = api.create

    def create(obj, namespace=None):
        created.append(copy.deepcopy(obj))
        return real_create(obj, namespace)

    monkeypatch.setattr(api, "create", create)
    op_types.apply_ops(api, NS, [{"op": "redis_flush", "service": "redis", "port": 6379,
                                  "image_from": "Deployment/redis"}], sleep=no_sleep)
    pod = created[0]
    ctr = pod["spec"]["containers"][0]
    assert ctr["command"] == ["redis-cli", "-h", "redis", "-p", "6379", "-n", "0", "FLUSHDB"]
    assert ctr["image"] == "localhost/opsdrill/redis:7"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert not [r for r in api.store if r.startswith("Pod/")]   # cleaned up


def test_redis_flush_failure_is_reported(api, monkeypatch):
    monkeypatch.setattr(api, "pod_log", lambda name, *a, **k: "Could not connect to Redis\n")
    with pytest.raises(errors.RestoreError, match="redis FLUSHDB pod .* Could not connect"):
        op_types.apply_ops(api, NS, [{"op": "redis_flush", "service": "redis"}], sleep=no_sleep)
    assert not [r for r in api.store if r.startswith("Pod/")]


# -- drill state in the cluster ----------------------------------------------------------

def test_save_load_and_run_restore(api, stack):
    entry = catalog.lookup("outage", "configuration", "secret_issues")
    state, objects = inject(api, entry)
    drill_state.save_state(api, NS, state, objects, key=KEY)
    assert "Secret/opsdrill-drill-state" in api.store  # the Secret snapshot went there
    cm = api.get("ConfigMap", "opsdrill-drill-state")
    assert "opsdrill-demo" not in json.dumps(cm)
    loaded, loaded_objects, _cm = drill_state.load_state(api, NS)
    assert loaded["fault"] == "secret_issues"
    assert snap.diff(objects, loaded_objects) == []

    outcome = restore_plan.run_restore(api, NS, by="rollback", sleep=no_sleep)
    assert outcome["ok"] and outcome["by"] == "rollback"
    after, _objects, _cm = drill_state.load_state(api, NS)
    assert after["armed"] is False and after["phase"] == "restored"
    assert after["restore"]["ok"] is True
    assert "Lease/opsdrill-restore-lock" not in api.store
    assert snap.diff(objects, api.objects(touches_of(entry))) == []


def test_update_state_keeps_the_snapshot(api, stack):
    drill_state.save_state(api, NS, {"armed": True}, [stack["Deployment/redis"]], key=KEY)
    drill_state.update_state(api, NS, {"phase": "response_window"})
    state, objects, _cm = drill_state.load_state(api, NS)
    assert {k: v for k, v in state.items() if k != "digest"} == {
        "armed": True, "phase": "response_window", "secret_snapshot": None}
    assert len(objects) == 1


def test_load_state_without_configmap(api):
    with pytest.raises(errors.RestoreError, match="no drill state: ConfigMap opsdrill-ctl-seo-tool/opsdrill-drill-state"):
        drill_state.load_state(api, NS)


# -- lock ------------------------------------------------------------------------------

def test_lock_excludes_a_second_holder(api):
    assert drill_state.acquire_lock(api, NS, "rollback/a")
    with pytest.raises(errors.RestoreError, match="held by rollback/a"):
        drill_state.acquire_lock(api, NS, "deadman/b", wait_s=0, sleep=no_sleep)
    drill_state.release_lock(api, NS, "deadman/b")             # not the holder: nothing happens
    assert "Lease/opsdrill-restore-lock" in api.store
    drill_state.release_lock(api, NS, "rollback/a")
    assert drill_state.acquire_lock(api, NS, "deadman/b")


def test_expired_lock_is_taken_over(api):
    drill_state.acquire_lock(api, NS, "rollback/a", duration_s=1)
    lease = api.store["Lease/opsdrill-restore-lock"]
    lease["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"
    assert drill_state.acquire_lock(api, NS, "deadman/b", wait_s=0)
    assert api.store["Lease/opsdrill-restore-lock"]["spec"]["holderIdentity"] == "deadman/b"


# -- dead-man's switch -------------------------------------------------------------------


def test_deadman_waits_then_restores(api, clock):
    entry = catalog.lookup("error_spike", "configuration", "invalid_settings")
    state, objects = inject(api, entry)
    state["deadline"] = 50
    drill_state.save_state(api, NS, state, objects, key=KEY)
    logs = []
    code = rs.deadman(api, NS, deadline=50, poll_s=10, sleep=clock.sleep, now=clock.time,
                      log=lambda event, **kw: logs.append(event))
    assert code == 0 and clock.now >= 50
    assert "deadline passed: restoring" in logs
    after, _objects, _cm = drill_state.load_state(api, NS)
    assert after["restore"]["by"] == "deadman" and after["armed"] is False
    assert snap.diff(objects, api.objects(touches_of(entry))) == []


def test_deadman_stops_when_disarmed(api, clock):
    entry = catalog.lookup("error_spike", "configuration", "invalid_settings")
    state, objects = inject(api, entry)
    drill_state.save_state(api, NS, dict(state, deadline=1000), objects, key=KEY)
    logs = []

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now >= 30:
            drill_state.update_state(api, NS, {"armed": False, "phase": "restored"})

    code = rs.deadman(api, NS, deadline=1000, poll_s=10, sleep=sleep, now=clock.time,
                      log=lambda event, **kw: logs.append(event))
    assert code == 0 and logs == ["disarmed"] and clock.now < 1000
    assert snap.diff(objects, api.objects(touches_of(entry)))  # the fault is still there


def test_deadman_follows_an_extended_deadline(api, stack, clock):
    drill_state.save_state(api, NS, {"armed": True, "deadline": 300, "created": [], "touches": ["Deployment/redis"]},
                           [stack["Deployment/redis"]], key=KEY)
    rs.deadman(api, NS, deadline=60, poll_s=20, sleep=clock.sleep, now=clock.time,
               log=lambda *a, **k: None)
    assert clock.now >= 300


def test_deadman_without_state_exits(api):
    logs = []
    assert rs.deadman(api, NS, deadline=0, log=lambda e, **k: logs.append(e)) == 0
    assert [e.split(" (")[0] for e in logs] == ["no drill state: nothing to guard"]


# -- the state is trusted only as the drill wrote it ----------------------------------------

def _tamper(api, mutate):
    """What a trainee with write access to the state ConfigMap would do."""
    cm = api.get("ConfigMap", "opsdrill-drill-state")
    objects = json.loads(cm["data"]["snapshot.json"])
    state = json.loads(cm["data"]["state.json"])
    mutate(state, objects)
    cm["data"]["snapshot.json"] = snap.encode(objects)
    cm["data"]["state.json"] = snap.encode(state)
    api.replace(cm)


def test_a_changed_snapshot_fails_the_integrity_check_and_the_local_copy_restores(api, stack):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    state, objects = inject(api, entry)
    drill_state.save_state(api, NS, state, objects, key=KEY)
    local = (dict(state, digest=snap.state_digest(KEY, state, objects)), objects)

    def plant(_state, objs):
        objs[0]["metadata"].setdefault("annotations", {})["planted"] = "by trainee"
    _tamper(api, plant)
    with pytest.raises(errors.IntegrityError, match="fails its integrity check"):
        drill_state.load_state(api, NS)
    with pytest.raises(errors.IntegrityError):
        restore_plan.run_restore(api, NS, sleep=no_sleep)                 # no local copy: loud failure
    outcome = restore_plan.run_restore(api, NS, sleep=no_sleep, fallback=local)
    assert outcome["ok"] and outcome["source"] == "local"
    assert "fails its integrity check" in outcome["state_problem"]
    live = api.get("Deployment", "backend-api")
    assert "planted" not in json.dumps(live["metadata"])
    assert snap.diff(objects, api.objects(touches_of(entry))) == []


def test_a_resigned_state_that_differs_from_the_local_copy_is_not_used(api, stack):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    state, objects = inject(api, entry)
    drill_state.save_state(api, NS, state, objects, key=KEY)
    local = (dict(state, digest=snap.state_digest(KEY, state, objects)), objects)
    other = [dict(o) for o in objects]
    drill_state.save_state(api, NS, dict(state, fault="other"), other, key=b"x" * 32)  # key and state replaced
    outcome = restore_plan.run_restore(api, NS, sleep=no_sleep, fallback=local)
    assert outcome["source"] == "local" and "local copy" in outcome["state_problem"]


def test_the_restore_writes_only_touched_namespaced_objects_in_the_drill_namespace(api, stack):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    state, objects = inject(api, entry)
    planted = [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "root"},
         "spec": {"hostPath": {"path": "/"}, "capacity": {"storage": "1Gi"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-touched", "namespace": "kube-system"},
         "data": {"a": "b"}},
    ]
    moved = [dict(o, metadata=dict(o["metadata"], namespace="kube-system")) for o in objects]
    state = dict(state, created=state["created"] + ["ClusterRoleBinding/evil"])
    keep, created, refused = restore_plan.restorable(state, moved + planted, NS)
    assert [snap.ref_of(o) for o in keep] == touches_of(entry)
    assert all(o["metadata"]["namespace"] == NS for o in keep)
    assert set(refused) == {"PersistentVolume/root", "Namespace/kube-system", "ConfigMap/not-touched",
                            "ClusterRoleBinding/evil"}
    assert "ClusterRoleBinding/evil" not in created
    outcome = restore_plan.restore(api, NS, state, moved + planted, sleep=no_sleep)
    assert outcome["ok"] and set(outcome["refused"]) == set(refused)
    assert "PersistentVolume/root" not in api.store and "ConfigMap/not-touched" not in api.store
    with pytest.raises(errors.RestoreError, match="names none of its"):
        restore_plan.restore(api, NS, dict(state, touches=[]), objects, sleep=no_sleep)


def test_signed_fields_change_only_through_a_verified_resign(api, stack):
    drill_state.save_state(api, NS, {"armed": True, "touches": ["Deployment/redis"], "created": []},
                           [stack["Deployment/redis"]], key=KEY)
    drill_state.update_state(api, NS, {"created": ["ConfigMap/x"]})          # progress: not signed
    assert drill_state.load_state(api, NS)[0]["created"] == ["ConfigMap/x"]
    drill_state.update_state(api, NS, {"touches": ["Deployment/redis", "Service/redis"]})   # signed: re-signed
    assert drill_state.load_state(api, NS)[0]["touches"] == ["Deployment/redis", "Service/redis"]
    _tamper(api, lambda state, objs: state.update(touches=["Deployment/redis", "Secret/postgres-credentials"]))
    with pytest.raises(errors.IntegrityError):
        drill_state.update_state(api, NS, {"touches": []})
    with pytest.raises(errors.RestoreError, match="digest"):
        drill_state.update_state(api, NS, {"digest": "0" * 64})


@pytest.mark.parametrize("spec", [
    {"renewTime": "2099-01-01T00:00:00.000000Z", "leaseDurationSeconds": 300},   # in the future
    {"renewTime": None, "leaseDurationSeconds": 10 ** 9},                       # forever
    {"renewTime": "not a time", "leaseDurationSeconds": 300},
], ids=["future-renew", "huge-duration", "garbled"])
def test_a_planted_restore_lock_does_not_block_the_restore(api, spec):
    now = drill_state.now_iso()
    spec = dict(spec, holderIdentity="trainee-1")
    spec["renewTime"] = spec["renewTime"] or now
    api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": drill_state.LOCK_NAME}, "spec": spec}, NS)
    assert drill_state.acquire_lock(api, NS, "rollback/a", wait_s=0, sleep=no_sleep)
    assert api.store["Lease/opsdrill-restore-lock"]["spec"]["holderIdentity"] == "rollback/a"


def test_deadman_keeps_guarding_a_garbled_state_and_fails_loudly_at_the_deadline(api, stack, clock):
    drill_state.save_state(api, NS, {"armed": True, "deadline": 40, "touches": []}, [stack["Deployment/redis"]], key=KEY)
    cm = api.get("ConfigMap", "opsdrill-drill-state")
    cm["data"]["state.json"] = "{not json"
    api.replace(cm)
    logs = []
    with pytest.raises(errors.IntegrityError):
        rs.deadman(api, NS, deadline=40, poll_s=10, sleep=clock.sleep, now=clock.time,
                   log=lambda event, **kw: logs.append(event))
    assert clock.now >= 40 and "state unreadable, retrying" in logs


def test_control_namespace_names():
    assert snap.control_namespace("seo-tool") == "opsdrill-ctl-seo-tool"
    long_name = "a" * 63
    name = snap.control_namespace(long_name)
    assert len(name) <= 63 and name != snap.control_namespace("a" * 62 + "b")


# -- the standalone files ------------------------------------------------------------------

def test_standalone_run_on_plain_python(tmp_path):
    """The dead-man's switch runs the same package without Ansible (nor site-packages) on
    the path: ``runtime.tree()`` on PYTHONPATH, ``python3 -m``."""
    shipped, workdir = tmp_path / "shipped", tmp_path / "workdir"
    for relpath, text in runtime.tree().items():
        path = shipped.joinpath(*relpath.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    workdir.mkdir()
    package = "ansible_collections.opsdrill.drills.plugins.module_utils.runtime"
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(shipped)}
    done = subprocess.run([sys.executable, "-S", "-m", package + ".restore", "--help"], cwd=str(workdir),
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--state-configmap" in done.stdout
    check = ("from %s import restore, k8s_rest, snapshot; "
             "assert restore._k8s is k8s_rest and restore._snap is snapshot; "
             "assert restore.__file__.startswith(%r); "
             "import sys; assert not [m for m in sys.modules if m == 'ansible' or m.startswith(('ansible.', 'yaml'))]"
             % (package, str(shipped)))
    done = subprocess.run([sys.executable, "-S", "-c", check], cwd=str(workdir),
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # no cluster configuration: exit 2 with a JSON log line naming the problem
    done = subprocess.run([sys.executable, "-S", "-m", package + ".restore",
                           "--namespace", "x", "--deadline", "0"], cwd=str(workdir),
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["msg"] == "configuration error" and "KUBERNETES_SERVICE_HOST" in line["error"]


class _RolloutView:
    """One Deployment (api-gateway, 2 replicas, generation 5) with the given status, no pods."""

    def __init__(self, status):
        self.deployment = {"kind": "Deployment", "metadata": {"name": "api-gateway", "generation": 5},
                           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api-gateway"}}},
                           "status": status}

    def get_or_none(self, kind, name, namespace):
        return self.deployment

    def list(self, kind, namespace, label_selector=None):
        return []


@pytest.mark.parametrize("status, pending", [
    # Just replaced: the controller has not seen the new generation yet.
    ({"observedGeneration": 4, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, True),
    # Seen, but the new ReplicaSet has no pod yet: the API server omits updatedReplicas (0).
    ({"observedGeneration": 5, "replicas": 2, "availableReplicas": 2}, True),
    # Surge pod created: three pods, the old ones still serving.
    ({"observedGeneration": 5, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}, True),
    # Both new pods there, one not ready yet.
    ({"observedGeneration": 5, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}, True),
    ({"observedGeneration": 5, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, False),
])
def test_rollout_is_pending_until_only_new_ready_pods_are_left(status, pending):
    view = _RolloutView(status)
    assert restore_plan.rollouts_pending(view, "ns", [view.deployment]) == (["api-gateway"] if pending else [])


def test_a_service_switched_to_nodeport_is_recreated_when_the_replace_is_refused(api, stack):
    """A trainee switched a touched Service to NodePort: the restore body (ClusterIP, with the
    live nodePort copied as an allocated value) is refused as invalid; the restore deletes and
    recreates the Service from its snapshot."""
    entry = catalog.lookup("outage", "dependencies", "network_issues")
    state, objects = inject(api, entry)
    svc = api.get("Service", "redis")
    svc["spec"]["type"] = "NodePort"
    for port in svc["spec"]["ports"]:
        port["nodePort"] = 30079
    api.replace(svc)
    real_replace = api.replace

    def replace(obj, namespace=None):
        spec = obj.get("spec") or {}
        if obj["kind"] == "Service" and spec.get("type", "ClusterIP") == "ClusterIP" \
                and any("nodePort" in p for p in spec.get("ports") or []):
            raise op_types.ApiError(422, "Invalid", 'Service "redis" is invalid: spec.ports[0].nodePort: '
                                    "Forbidden: may not be used when `type` is 'ClusterIP'", "PUT", "/")
        return real_replace(obj, namespace)
    api.replace = replace
    outcome = restore_plan.restore(api, NS, state, objects, sleep=no_sleep)
    assert outcome["ok"], outcome
    live = api.get("Service", "redis")
    assert live["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert not any("nodePort" in p for p in live["spec"]["ports"])
    assert snap.diff(objects, api.objects(touches_of(entry))) == []


def test_a_long_restore_renews_its_lock(api, clock):
    assert drill_state.acquire_lock(api, NS, "rollback/a")
    api.store["Lease/opsdrill-restore-lock"]["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"
    beat = drill_state.Heartbeat(lambda: drill_state.renew_lock(api, NS, "rollback/a"), every_s=30, clock=clock.time)
    beat()                                     # too early: nothing
    assert api.store["Lease/opsdrill-restore-lock"]["spec"]["renewTime"].startswith("2020")
    clock.sleep(31)
    beat()
    assert not api.store["Lease/opsdrill-restore-lock"]["spec"]["renewTime"].startswith("2020")
    assert not drill_state.renew_lock(api, NS, "deadman/b"), "only the holder renews"


def _deadman_pod(api, phase):
    api.store["Pod/opsdrill-deadman-abcde"] = {
        "kind": "Pod", "metadata": {"name": "opsdrill-deadman-abcde", "namespace": "opsdrill-ctl-" + NS},
        "status": {"phase": phase}}


def test_switch_is_awaited_until_its_pod_runs(api):
    from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman
    _deadman_pod(api, "Pending")
    looks = []

    def sleep(seconds):
        looks.append(seconds)
        if len(looks) == 3:
            api.store["Pod/opsdrill-deadman-abcde"]["status"]["phase"] = "Running"

    deadman.wait_running(api, NS, wait_s=60, sleep=sleep)
    assert looks == [0.2, 0.2, 0.2]


def test_switch_that_does_not_run_stops_the_injection(api):
    from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman
    _deadman_pod(api, "Succeeded")
    with pytest.raises(errors.RestoreError, match="not running after 0 s \\(Succeeded\\): not injecting without it"):
        deadman.wait_running(api, NS, wait_s=0, sleep=no_sleep)
