"""The dead-man's switch objects, the controller watchdog and the deploy repository."""

import copy
import json
import os
import re
import subprocess
import sys
import time

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman
from ansible_collections.opsdrill.drills.plugins.module_utils import deploy_repo
from ansible_collections.opsdrill.drills.plugins.module_utils import engine
from ansible_collections.opsdrill.drills.plugins.module_utils import runtime
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import watchdog

NS = "seo-tool"
RUNTIME = "ansible_collections.opsdrill.drills.plugins.module_utils.runtime"


def test_manifests_run_the_restore_code_on_a_stock_image():
    objects = deadman.manifests(NS, "seo-tool-20261122T173000Z", 1795370400, "localhost/opsdrill/python:3.11",
                                "Never", now=1795368600)
    placed = [(o["kind"], o["metadata"]["namespace"]) for o in objects]
    control = "opsdrill-ctl-seo-tool"
    assert placed == [("ServiceAccount", control), ("Role", control), ("RoleBinding", control),
                      ("Role", NS), ("RoleBinding", NS), ("ConfigMap", control), ("Job", control)]
    code = objects[5]["data"]
    job = objects[6]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # The ConfigMap holds runtime.tree() under flat keys (the runtime's files by their own
    # names); the volume's items put each at its package path, one key per file.
    assert pod["volumes"] == [{"name": "code", "configMap": {"name": "opsdrill-deadman-code",
                                                             "items": pod["volumes"][0]["configMap"]["items"]}}]
    items = pod["volumes"][0]["configMap"]["items"]
    assert {item["path"]: code[item["key"]] for item in items} == runtime.tree()
    assert sorted(item["key"] for item in items) == sorted(code)
    assert {key: text for key, text in code.items() if not key.startswith("ansible_collections.")} \
        == runtime.sources()
    for key in code:
        assert re.fullmatch(r"[-._a-zA-Z0-9]+", key) and len(key) <= 253, key
    assert container["image"] == "localhost/opsdrill/python:3.11" and container["imagePullPolicy"] == "Never"
    assert container["command"] == ["python3", "-m", RUNTIME + ".restore", "--namespace", NS,
                                    "--state-namespace", control, "--deadline", "1795370400", "--poll", "5"]
    assert container["env"] == [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                                {"name": "PYTHONUNBUFFERED", "value": "1"},
                                {"name": "PYTHONPATH", "value": "/opsdrill"}]
    assert container["volumeMounts"] == [{"name": "code", "mountPath": "/opsdrill", "readOnly": True}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == "opsdrill-deadman" and pod["restartPolicy"] == "OnFailure"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert job["spec"]["activeDeadlineSeconds"] == 1800 + 1800
    # Both RoleBindings name the ServiceAccount in the control namespace.
    for binding in (objects[2], objects[4]):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "opsdrill-deadman", "namespace": control}]
    in_drill_ns = {r for rule in objects[3]["rules"] for r in rule["resources"]}
    assert {"deployments", "secrets", "configmaps", "services", "pods", "pods/log",
            "deployments/scale", "persistentvolumeclaims"} <= in_drill_ns
    assert "leases" not in in_drill_ns
    # In the control namespace: only the state, its key and the restore lock, by name.
    by_resource = {}
    for rule in objects[1]["rules"]:
        for resource in rule["resources"]:
            by_resource.setdefault(resource, []).append(rule)
    assert set(by_resource) == {"configmaps", "secrets", "leases"}
    assert by_resource["configmaps"][0]["resourceNames"] == ["opsdrill-drill-state"]
    assert by_resource["secrets"][0]["verbs"] == ["get"]
    assert objects[0]["metadata"]["labels"]["opsdrill.io/drill-id"] == "seo-tool-20261122T173000Z"


def test_every_snapshotted_kind_is_covered_by_the_role():
    resources = {r for rule in deadman.RULES for r in rule["resources"]}
    plural = {"Deployment": "deployments", "Service": "services", "Secret": "secrets",
              "ConfigMap": "configmaps", "PersistentVolumeClaim": "persistentvolumeclaims",
              "StatefulSet": "statefulsets", "DaemonSet": "daemonsets", "ServiceAccount": "serviceaccounts"}
    for entry in catalog.load().entries():
        for item in entry["touches"]:
            assert plural[item["kind"]] in resources, (entry["name"], item)


def test_controller_pid_finds_the_ansible_playbook_ancestor(tmp_path):
    script = tmp_path / "ansible-playbook"
    script.write_text("import sys, subprocess\n"
                      "print(subprocess.run([sys.executable, '-c', %r], capture_output=True, text=True).stdout)\n"
                      % ("import sys; sys.path.insert(0, %r); import deadman_probe" % str(tmp_path)))
    (tmp_path / "deadman_probe.py").write_text(
        "import os, sys\n"
        "sys.path[:0] = %r\n"
        "from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman\n"
        "print(deadman.controller_pid(), os.getppid())\n" % (sys.path,))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1], "the parent running 'ansible-playbook' is found"


def test_the_job_runs_its_configmap_as_the_package(tmp_path):
    """The pod, minus the cluster: the volume laid out as the kubelet does (each item's key
    at its path under the mount), the Job's command and env, the mount as PYTHONPATH."""
    objects = deadman.manifests(NS, "seo-tool-20261122T173000Z", 1795370400, "python:3.12-slim",
                                now=1795368600)
    configmap, pod = objects[5], objects[6]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mount, elsewhere = tmp_path / "opsdrill", tmp_path / "workdir"
    elsewhere.mkdir()
    for item in pod["volumes"][0]["configMap"]["items"]:
        path = mount.joinpath(*item["path"].split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(configmap["data"][item["key"]], encoding="utf-8")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PYTHONPATH"] == container["volumeMounts"][0]["mountPath"]
    env.update(PYTHONPATH=str(mount), PATH=os.environ.get("PATH", "/usr/bin"), HOME=str(elsewhere))
    assert container["command"][0] == "python3"
    done = subprocess.run([sys.executable] + container["command"][1:] + ["--help"], cwd=str(elsewhere), env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--state-configmap" in done.stdout
    assert not list(mount.rglob("__pycache__"))


def test_spawn_watchdog_runs_the_package_from_its_directory(tmp_path):
    """spawn_watchdog writes runtime.tree() and starts ``python -m ...watchdog`` detached,
    logging to watchdog.log. A kubeconfig that is not there: it logs the configuration
    error and exits 2 (no cluster is asked)."""
    directory = tmp_path / "watchdog"
    pid = deadman.spawn_watchdog(str(directory), os.getpid(), NS, "d1", time.time() + 60,
                                 kubeconfig=str(tmp_path / "no-such-kubeconfig"))
    try:
        _pid, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 2
    except ChildProcessError:  # reaped by subprocess already
        pass
    deadline = time.time() + 60
    log = directory / "watchdog.log"
    while "configuration error" not in (log.read_text() if log.exists() else "") and time.time() < deadline:
        time.sleep(0.2)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [r["msg"] for r in records] == ["configuration error"], log.read_text()
    for relpath, text in runtime.tree().items():
        assert directory.joinpath(*relpath.split("/")).read_text(encoding="utf-8") == text
    assert (directory / RUNTIME.replace(".", "/") / "watchdog.py").stat().st_mode & 0o777 == 0o600
    assert not list(directory.rglob("__pycache__"))


def test_watchdog_helpers():
    assert watchdog.process_alive(os.getpid())
    assert not watchdog.process_alive(os.getpid(), start=-1)
    assert watchdog.still_ours({"drill_id": "d1", "armed": True}, "d1")
    assert not watchdog.still_ours({"drill_id": "d1", "armed": False}, "d1")
    assert not watchdog.still_ours({"drill_id": "d2", "armed": True}, "d1")
    assert not watchdog.still_ours(None, "d1")


def test_watchdog_rolls_back_when_the_controller_is_gone(api, tmp_path, monkeypatch):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    drill = {"drill_id": "d1", "scenario": "outage", "variant": "resources", "fault": "memory_limits",
             "namespace": NS}
    before = copy.deepcopy(api.get_or_none("Deployment", "backend-api")["spec"]["template"])
    engine.take_snapshot(api, NS, entry, drill, deadline=2e9)
    engine.inject(api, NS, entry, drill, sleep=lambda s: None)
    assert api.get_or_none("Deployment", "backend-api")["spec"]["template"] != before
    api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "opsdrill-drill"},
                "spec": {"holderIdentity": "d1"}})
    monkeypatch.setattr(restore_plan.time, "sleep", lambda s: None)
    monkeypatch.setattr(deadman, "remove", lambda client, ns: ["Job/opsdrill-deadman"])

    class Args:
        pid = 999999
        namespace = NS
        drill_id = "d1"
        artifacts_dir = str(tmp_path)

    (tmp_path / "timeline.jsonl").write_text(json.dumps({"event": "response_window_started"}) + "\n")
    state = watchdog.read_state(api, NS)
    assert watchdog.interrupted(api, Args, state) == 0
    assert api.get_or_none("Deployment", "backend-api")["spec"]["template"] == before
    assert api.get_or_none("Lease", "opsdrill-drill") is None
    events = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events][1:] == [
        "response_window_ended", "drill_failed", "rollback_started", "rollback_finished",
        "steady_state_restored", "verify_passed", "deadman_disarmed", "drill_finished"]
    assert events[1]["data"]["reason"] == "interrupted"
    assert events[5]["data"] == {"by": "rollback"}
    assert events[6]["data"] == {"by": "watchdog", "ok": True, "differences": [], "problems": []}
    # Verified: nothing of the drill stays in the namespace (the state names the fault).
    assert watchdog.read_state(api, NS) is None
    assert api.get_or_none("Secret", "opsdrill-drill-state") is None
    assert "ConfigMap/opsdrill-drill-state" in events[7]["data"]["removed"]


def test_watchdog_keeps_the_state_when_the_restore_does_not_verify(api, tmp_path, monkeypatch):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    drill = {"drill_id": "d1", "scenario": "outage", "variant": "resources", "fault": "memory_limits",
             "namespace": NS}
    engine.take_snapshot(api, NS, entry, drill, deadline=2e9)
    engine.inject(api, NS, entry, drill, sleep=lambda s: None)
    monkeypatch.setattr(restore_plan.time, "sleep", lambda s: None)
    monkeypatch.setattr(watchdog, "verify_after_restore", lambda *args: False)
    monkeypatch.setattr(deadman, "remove", lambda client, ns: [])

    class Args:
        pid = 999999
        namespace = NS
        drill_id = "d1"
        artifacts_dir = str(tmp_path)

    assert watchdog.interrupted(api, Args, watchdog.read_state(api, NS)) == 0
    assert watchdog.read_state(api, NS) is not None, "rollback.yml needs the state of an unverified restore"


_WORKER = """
import os, sys, time
if os.fork() == 0:
    os.setsid()          # an Ansible worker: a session of its own, the controller's command line
    time.sleep(120)
else:
    time.sleep(120)
"""


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_orphaned_workers_of_a_killed_controller_are_found_and_killed():
    marker = "opsdrill-orphan-test-%d" % os.getpid()
    controller = subprocess.Popen([sys.executable, "-c", _WORKER, marker])
    try:
        workers = []
        for _attempt in range(100):
            cmdline = deadman.command_line(controller.pid)
            if marker in cmdline:  # exec done: the fork of the test runner carried its command line
                workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != controller.pid
                           and deadman.command_line(int(p)) == cmdline]
            if workers:
                break
            time.sleep(0.05)
        assert len(workers) == 1
        since = deadman.start_time(controller.pid)
        # While the controller runs, its worker is not an orphan.
        assert deadman.orphaned_workers(cmdline, launcher=os.getpid(), since=since) == []
        controller.kill()
        controller.wait()
        assert deadman.orphaned_workers(cmdline, launcher=os.getpid(), since=since) == workers
        assert deadman.kill_orphaned_workers(cmdline, launcher=os.getpid(), since=since) == workers
        for _attempt in range(100):
            if not _alive(workers[0]):
                break
            time.sleep(0.05)
        assert not _alive(workers[0])
    finally:
        controller.kill()


def test_watchdog_verification_fails_on_a_rollout_that_does_not_finish(api, tmp_path, monkeypatch):
    entry = catalog.lookup("outage", "resources", "memory_limits")
    drill = {"drill_id": "d1", "scenario": "outage", "variant": "resources", "fault": "memory_limits",
             "namespace": NS}
    engine.take_snapshot(api, NS, entry, drill, deadline=2e9)
    monkeypatch.setattr(restore_plan, "rollouts_pending", lambda client, ns, objects: ["backend-api"])
    monkeypatch.setattr(restore_plan.time, "sleep", lambda s: None)

    class Args:
        namespace = NS
        artifacts_dir = str(tmp_path)

    state = watchdog.read_state(api, NS)
    assert watchdog.verify_after_restore(api, Args, state, {"ok": True, "remaining": []}, timeout_s=0) is False
    events = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["verify_failed"]
    assert events[0]["data"]["problems"] == ["Deployment/backend-api: rollout not finished after 0 s"]


def _git(path, *args):
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not deploy_repo.shutil.which("git"), reason="git missing")
def test_deploy_repo_release_and_revert(api, tmp_path):
    entry = catalog.lookup("error_spike", "code", "logic_errors")
    assert deploy_repo.release_steps(entry) == [("Deployment/api-gateway",
                                                 "api-gateway: release 1.5.0 (response cache v2, rank weighting)")]
    live, ops = engine.prepare(api, NS, entry, {"drill_id": "d1"})
    repo = deploy_repo.DeployRepo(tmp_path / "repo")
    after = [op["object"] for op in ops if op["op"] == "replace"][0]
    commits = repo.record_release("Deployment/api-gateway", live["Deployment/api-gateway"], after,
                                  "api-gateway: release 1.5.0 (response cache v2, rank weighting)")
    assert len(commits) == 2
    log = _git(tmp_path / "repo", "log", "-p", "--format=%s", "services/api-gateway")
    assert "api-gateway: release 1.5.0" in log and "+          value: '0.25'" in log
    assert "namespace:" not in _git(tmp_path / "repo", "show", "HEAD:services/api-gateway/deployment.yaml")
    revert = repo.record_revert("Deployment/api-gateway", live["Deployment/api-gateway"],
                                "api-gateway: release 1.5.0 (response cache v2, rank weighting)")
    assert revert
    assert _git(tmp_path / "repo", "log", "-1", "--format=%s").startswith('Revert "api-gateway: release 1.5.0')
    assert repo.record_revert("Deployment/api-gateway", live["Deployment/api-gateway"], "x") is None
    # The next drill finds the running release in the repository: only its own commit.
    assert len(repo.record_release("Deployment/api-gateway", live["Deployment/api-gateway"], after, "again")) == 1


def test_manifest_text_does_not_depend_on_key_order(api):
    live = api.get("Deployment", "api-gateway")
    shuffled = json.loads(json.dumps(live, sort_keys=True))
    assert deploy_repo.manifest_text(live) == deploy_repo.manifest_text(shuffled)
    assert deploy_repo.manifest_text(live).startswith("apiVersion: apps/v1\nkind: Deployment\nmetadata:")


@pytest.mark.parametrize("ref", ["Deployment/../../etc/cron.d/x", "Deployment/..", "../x/y", "Deployment/A_B",
                                 "deployment/api-gateway", "Deployment/"])
def test_deploy_repo_paths_come_only_from_valid_object_refs(ref):
    with pytest.raises(deploy_repo.DeployRepoError, match="is not Kind/name of a Kubernetes object"):
        deploy_repo.service_path(ref)


def test_deploy_repo_writes_stay_inside_the_repository(tmp_path):
    assert deploy_repo.service_path("Deployment/api-gateway") == "services/api-gateway/deployment.yaml"
    repo = deploy_repo.DeployRepo(str(tmp_path / "repo"))
    with pytest.raises(deploy_repo.DeployRepoError, match="outside the deploy repository"):
        repo._write("../escaped.yaml", "x")
    assert not (tmp_path / "escaped.yaml").exists()


def test_deploy_repo_starts_with_the_stack_then_a_release_is_only_its_own_commit(api, tmp_path):
    """setup.yml records the stack first: git log -p services/api-gateway has a history
    before any fault, and a release later adds exactly one commit on top of it."""
    deployments = [api.get("Deployment", name) for name in ("api-gateway", "backend-api")]
    repo = deploy_repo.DeployRepo(tmp_path / "repo")
    assert repo.stack_changes(deployments) == ["services/api-gateway/deployment.yaml",
                                               "services/backend-api/deployment.yaml"]
    assert not (tmp_path / "repo").exists()                              # check mode writes nothing
    first = repo.record_stack(deployments, "Stack as deployed by setup.yml")
    assert repo.stack_changes(deployments) == []
    assert first and repo.record_stack(deployments, "again") is None   # nothing changed: no commit
    files = _git(tmp_path / "repo", "show", "--name-only", "--format=", "HEAD").split()
    assert files == ["services/api-gateway/deployment.yaml", "services/backend-api/deployment.yaml"]
    entry = catalog.lookup("error_spike", "code", "logic_errors")
    live, ops = engine.prepare(api, NS, entry, {"drill_id": "d2"})
    after = [op["object"] for op in ops if op["op"] == "replace"][0]
    commits = repo.record_release("Deployment/api-gateway", live["Deployment/api-gateway"], after, "release 1.5.0")
    assert len(commits) == 1
    subjects = _git(tmp_path / "repo", "log", "--format=%s", "services/api-gateway").splitlines()
    assert subjects == ["release 1.5.0", "Stack as deployed by setup.yml"]
