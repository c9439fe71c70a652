"""The trainee attack suite: during a live drill, a trainee (the lab's trainee kubeconfig,
``edit`` in the drill namespace) tries to read or break the drill, its rollback and its
dead-man's switch, and to escape the namespace. Every attempt must be refused by the API
server (RBAC 403, or Pod Security admission), or have no effect on the outcome; the drill
still rolls back every touched object (a Service switched to NodePort included). Changes
beyond the touched objects are reported by the verification; postgres scaled to 0 keeps
the stack from its steady state, and the drill says so instead of passing.

An admin also rewrites the drill state in the control namespace (what a trainee with more
rights on a real cluster could do): the rollback must notice (HMAC, and the controller's
local copy), restore from the local copy and fail the run loudly.

Writes ``trust-boundary.md`` (attack, HTTP result) to the drill output directory.
"""
import json
import threading
import time

import pytest

import drill_runner
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot
from kubectl import Kube

pytestmark = pytest.mark.drill

# The fault touches a Service (its selector) and a Deployment (its pods restart): the team
# can then change a touched object's immutable field, which the rollback must still undo.
KEY = "outage/resources/network_problems"
TARGET = "backend-api"
RESPONSE_WINDOW_S = 45
# postgres, scaled to 0 by the team, keeps the stack from its steady state: the drill waits
# this long for it after the rollback, then reports it.
STEADY_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def trainee(lab):
    kubeconfigs = lab.get("trainee_kubeconfigs") or {}
    assert kubeconfigs, "the lab has no trainee kubeconfig (lab.json trainee_kubeconfigs)"
    name = sorted(kubeconfigs)[0]
    kube = Kube(lab["kubectl"], kubeconfigs[name])
    kube.user = name
    return kube


def _pod(name, spec_extra, container_extra=None):
    container = {"name": "x", "image": "localhost/opsdrill/python:3.11", "imagePullPolicy": "Never",
                 "command": ["sleep", "60"]}
    container.update(container_extra or {})
    spec = {"containers": [container], "restartPolicy": "Never"}
    spec.update(spec_extra)
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def attacks(ns, control):
    """(name, kubectl argv, stdin or None, what must happen: 'refused' or 'no effect')."""
    planted_state = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "opsdrill-drill-state"},
                                "data": {"state.json": json.dumps({"armed": False}), "snapshot.json": "[]"}})
    planted_lock = json.dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                               "metadata": {"name": "opsdrill-restore-lock"},
                               "spec": {"holderIdentity": "trainee", "leaseDurationSeconds": 100000,
                                        "renewTime": "2099-01-01T00:00:00.000000Z"}})
    return [
        ("read the drill state", ["get", "configmap", "opsdrill-drill-state", "-n", control, "-o", "yaml"],
         None, "refused"),
        ("read the state's Secret", ["get", "secret", "opsdrill-drill-state", "-n", control], None, "refused"),
        ("read the state's HMAC key", ["get", "secret", "opsdrill-drill-key", "-n", control], None, "refused"),
        ("list the control namespace's configmaps", ["get", "configmaps", "-n", control], None, "refused"),
        ("edit the drill state", ["patch", "configmap", "opsdrill-drill-state", "-n", control, "--type=merge",
                                  "-p", '{"data":{"state.json":"{}"}}'], None, "refused"),
        ("delete the drill state", ["delete", "configmap", "opsdrill-drill-state", "-n", control], None, "refused"),
        ("plant the restore lock", ["create", "-n", control, "-f", "-"], planted_lock, "refused"),
        ("delete the drill Lease", ["delete", "lease", "opsdrill-drill", "-n", control], None, "refused"),
        ("delete the dead-man's Job", ["delete", "job", "opsdrill-deadman", "-n", control], None, "refused"),
        ("edit the dead-man's code", ["patch", "configmap", "opsdrill-deadman-code", "-n", control, "--type=merge",
                                      "-p", '{"data":{"restore.py":"raise SystemExit(0)"}}'], None, "refused"),
        ("token for the dead-man's ServiceAccount", ["create", "token", "opsdrill-deadman", "-n", control],
         None, "refused"),
        ("delete the dead-man's Role in the drill namespace", ["delete", "role", "opsdrill-deadman", "-n", ns],
         None, "refused"),
        ("bind itself to the dead-man's Role", ["create", "rolebinding", "steal", "--role=opsdrill-deadman",
                                                "--user=trainee-1", "-n", ns], None, "refused"),
        ("privileged pod", ["create", "-n", ns, "-f", "-"],
         _pod("attack-privileged", {}, {"securityContext": {"privileged": True}}), "refused"),
        ("hostPath / pod", ["create", "-n", ns, "-f", "-"],
         _pod("attack-hostpath", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
              {"volumeMounts": [{"name": "root", "mountPath": "/host"}]}), "refused"),
        ("hostNetwork pod", ["create", "-n", ns, "-f", "-"], _pod("attack-hostnet", {"hostNetwork": True}),
         "refused"),
        # Decoys in the team's own namespace: allowed, and ignored by the engine, which keeps
        # its objects in the control namespace.
        ("plant a disarmed drill state in the drill namespace", ["create", "-n", ns, "-f", "-"], planted_state,
         "no effect"),
        ("plant a restore lock in the drill namespace", ["create", "-n", ns, "-f", "-"], planted_lock, "no effect"),
        # A touched Service switched to NodePort: allowed with edit; the rollback's replace is
        # refused (422, the allocated nodePort) and it deletes and recreates the Service.
        ("switch the touched Service to NodePort", ["patch", "service", TARGET, "-n", ns, "--type=merge",
                                                    "-p", '{"spec":{"type":"NodePort"}}'], None, "no effect"),
        # A collateral change beyond the touched objects: allowed, reported by the verify.
        ("label an untouched Deployment", ["label", "deployment/frontend", "-n", ns, "drill-note=looked"], None,
         "no effect"),
        # The monitoring runs in the control namespace: queries yes, changes no.
        ("edit the alert rules", ["patch", "configmap", "prometheus-config", "-n", control, "--type=merge",
                                  "-p", '{"data":{"opsdrill-seed-alerts.yml":"groups: []"}}'], None, "refused"),
        ("scale Prometheus to 0", ["scale", "deployment/prometheus", "-n", control, "--replicas=0"], None,
         "refused"),
        ("delete Alertmanager's pods", ["delete", "pods", "-l", "app=alertmanager", "-n", control], None,
         "refused"),
        # The incident desk's witnessed record and its keys: out of reach too.
        ("delete the desk's entries", ["delete", "configmaps", "-l", "opsdrill.io/desk-record=true", "-n", control],
         None, "refused"),
        ("read the desk's tokens", ["get", "secret", "incident-desk-tokens", "-n", control], None, "refused"),
        ("token for the desk's ServiceAccount", ["create", "token", "incident-desk", "-n", control], None,
         "refused"),
        ("scale the desk to 0", ["scale", "deployment/incident-desk", "-n", control, "--replicas=0"], None,
         "refused"),
        ("query the alerts, as on-call does", ["get", "--raw", "/api/v1/namespaces/%s/services/prometheus:9090/proxy"
                                               "/api/v1/alerts" % control], None, "allowed"),
        # What the monitoring keeps in the drill namespace (the Service it finds pods by):
        # allowed with edit, flagged on the scorecard.
        ("write to the monitoring's scrape Service", ["annotate", "service", "backend-api-pods", "-n", ns,
                                                      "drill-note=x"], None, "flagged"),
        # Breaking a dependency the fault did not touch: allowed with edit; the rollback restores
        # only touched objects, so the drill must say the stack did not come back, and why.
        ("scale postgres to 0", ["scale", "deployment/postgres", "-n", ns, "--replicas=0"], None, "reported"),
        ("take a workload out of the steady-state selector",
         ["label", "deployment/worker", "-n", ns, "app.kubernetes.io/part-of=elsewhere", "--overwrite"], None,
         "flagged"),
    ]


def _wait_event(artifacts_base, event, done, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline and not done.is_set():
        for path in artifacts_base.rglob("timeline.jsonl"):
            if any(json.loads(line).get("event") == event for line in path.read_text().splitlines() if line.strip()):
                return path.parent
        time.sleep(1)
    raise AssertionError("no %s within %d s" % (event, timeout))


def test_trainee_attacks_are_refused_and_the_drill_still_rolls_back(lab, admin, trainee, guard_namespace,
                                                                    drill_output):
    ns = guard_namespace
    control = snapshot.control_namespace(ns)
    runner = drill_runner.DrillRunner(KEY, ns, lab, drill_output, response_window_s=RESPONSE_WINDOW_S,
                                      extra_vars={"drill_engine_steady_timeout_s": STEADY_TIMEOUT_S})
    box, done = {}, threading.Event()

    def drill():
        try:
            box["result"] = runner.run()
        finally:
            done.set()

    thread = threading.Thread(target=drill, daemon=True, name="drill-" + ns)
    thread.start()
    try:
        artifacts = _wait_event(runner.artifacts_dir.parent, "fault_injected", done)
        assert admin.run("get", "job", "opsdrill-deadman", "-n", control, check=False).returncode == 0, \
            "the dead-man's switch runs in the control namespace"

        rows = []
        for name, argv, stdin, expected in attacks(ns, control):
            proc = trainee.run(*argv, check=False, input_text=stdin)
            message = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            rows.append((name, expected, proc.returncode, message[0][:160]))
        # What an attacker with write access to the control namespace would do (on a real cluster
        # with broader trainee rights): add an annotation to the snapshot of the target. The HMAC
        # and the controller's local copy must catch it.
        state = admin.json("get", "configmap", "opsdrill-drill-state", "-n", control)
        objects = json.loads(state["data"]["snapshot.json"])
        for obj in objects:
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == TARGET:
                obj["metadata"].setdefault("annotations", {})["planted"] = "by-attacker"
        patch = json.dumps({"data": {"snapshot.json": snapshot.encode(objects)}})
        admin.run("patch", "configmap", "opsdrill-drill-state", "-n", control, "--type=merge", "-p", patch)

        # Once the drill has reported the stack that did not come back, the trainer brings
        # postgres back (the harness then finds the steady state).
        _wait_event(runner.artifacts_dir.parent, "verify_failed", done, timeout=600)
        admin.run("scale", "deployment/postgres", "-n", ns, "--replicas=1")
        thread.join(timeout=900)
        result = box.get("result")
        lines = ["| attack | expected | kubectl rc | API server said |", "|---|---|---|---|"]
        lines += ["| %s | %s | %s | %s |" % (n, e, rc, m.replace("|", "/")) for n, e, rc, m in rows]
        (drill_output / "trust-boundary.md").write_text("\n".join(lines) + "\n")

        refused_wrongly = [(n, rc, m) for n, e, rc, m in rows if e == "refused" and
                           (rc == 0 or not any(word in m for word in ("Forbidden", "forbidden", "violates PodSecurity")))]
        assert refused_wrongly == [], "attacks the API server did not refuse: %s" % refused_wrongly
        decoys_failed = [(n, m) for n, e, rc, m in rows if e in ("no effect", "flagged", "allowed", "reported")
                         and rc != 0]
        assert decoys_failed == [], decoys_failed

        # The drill noticed the changed state, restored from its local copy and failed loudly.
        assert result is not None, "the drill did not finish"
        with open(result.log, encoding="utf-8") as handle:
            log = handle.read()
        assert result.rc != 0 and "changed during the drill" in log, (result.rc, log[-3000:])
        events = drill_runner._timeline(artifacts)  # pylint: disable=protected-access
        names = [e["event"] for e in events]
        # The attacks changed nothing the drill observes: its symptom and alert came as usual.
        assert "symptom_observed" in names and "alert_firing" in names, names
        # Every touched object equals its snapshot; the stack did not come back (postgres at 0),
        # and the verification says so, naming the team's collateral changes.
        assert "verify_failed" in names and "verify_passed" not in names, names
        verified = [e for e in events if e["event"] == "verify_failed"][-1]["data"]
        assert verified["differences"] == [] and verified["problems"], verified
        assert {"Deployment/frontend: changed", "Deployment/postgres: changed", "Service/backend-api-pods: changed",
                "ConfigMap/opsdrill-drill-state: appeared"} <= set(verified["collateral"]), verified
        assert "did not verify" in log, log[-3000:]
        finished = [e for e in events if e["event"] == "rollback_finished"][-1]["data"]
        assert finished["source"] == "local" and "integrity" in finished["state_problem"], finished
        # From the cluster, independently: every touched object equals the local snapshot, the
        # planted annotation is not on the live Deployment, nothing of the drill is left.
        decoy = "%s/ConfigMap/opsdrill-drill-state" % ns      # the trainee's own object, left alone
        assert result.differences == [] and [x for x in result.leftovers if x != decoy] == [], \
            (result.differences, result.leftovers)
        live = admin.json("get", "deployment", TARGET, "-n", ns)
        assert "planted" not in (live["metadata"].get("annotations") or {})
        service = admin.json("get", "service", TARGET, "-n", ns)["spec"]
        assert service["type"] == "ClusterIP" and "track" not in service["selector"], service
        assert all("nodePort" not in port for port in service["ports"]), service
        assert admin.run("get", "configmap", "opsdrill-drill-state", "-n", ns, check=False).returncode == 0, \
            "the trainee's decoy in its own namespace is the trainee's, left alone"
        # The scorecard, from the API server's audit log: every kind of attempt is a finding for the
        # trainer, under the trainee's name.
        card = json.loads((artifacts / "scorecard.json").read_text())
        whats = {f["what"] for f in card["integrity"]["findings"] if f["actor"] == trainee.user}
        assert {"answer_key", "drill_objects", "monitoring", "selector_label"} <= whats, card["integrity"]["findings"]
        assert card["integrity"]["review_required"] is True
    finally:
        thread.join(timeout=900)
        # The trainee's own changes in its namespace, undone for the tests that follow.
        for argv in (("delete", "configmap", "opsdrill-drill-state", "-n", ns, "--ignore-not-found"),
                     ("delete", "lease", "opsdrill-restore-lock", "-n", ns, "--ignore-not-found"),
                     ("label", "deployment/frontend", "-n", ns, "drill-note-"),
                     ("annotate", "service", "backend-api-pods", "-n", ns, "drill-note-"),
                     ("scale", "deployment/postgres", "-n", ns, "--replicas=1"),
                     ("label", "deployment/worker", "-n", ns, "app.kubernetes.io/part-of=opsdrill-seo-tool",
                      "--overwrite")):
            admin.run(*argv, check=False)
