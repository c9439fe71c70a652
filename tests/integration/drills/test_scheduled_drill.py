"""A drill that Kubernetes schedules and runs: a CronJob of roles/drill_schedule fires, its
pod of the lab's execution-environment image (localhost/opsdrill/ee:1) runs drill.yml with
ansible-runner as the least-privilege ServiceAccount setup created, and the scorecard is
kept on the incident desk after the pod is gone.

Checked independently of the drill's own output: the Job the CronJob created (its
creation is the firing), the pod's exit status and the ansible-runner output in its log,
the API server's audit log (the ServiceAccount changed the fault's object: the injection's
time), the fault's object before and after (this test's own copies), the steady state, and
the desk's archive read with the lab trainer's token.
"""
import json
import os
import time

import pytest

import drill_runner
from desk_http import DeskHttp, token_of
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

pytestmark = pytest.mark.drill

NAMESPACE = "opsdrill-cron"
ACCOUNT = "opsdrill-runner"
KEY = "outage/configuration/secret_issues"
DRILL_VARS = {"scenario": "outage", "variant": "configuration", "fault": "secret_issues",
              "response_window_s": 0, "postmortem_window_s": 0}


def say(message):
    print(time.strftime("%H:%M:%S ") + "[scheduled drill] " + message, flush=True)


def _comparable(obj):
    """What a drill must give back: the object without the server's bookkeeping."""
    if obj is None:
        return None
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")} | {
        "labels": obj["metadata"].get("labels"), "annotations": obj["metadata"].get("annotations")}


@pytest.fixture(scope="module")
def scheduled(lab, admin, drill_output):
    """The schedule's first drill, run to its end; what the test saw."""
    control = snapshot.control_namespace(NAMESPACE)
    drill_runner.fresh_namespace(admin, NAMESPACE, drill_output, say, {"drill_runner_account": ACCOUNT})
    entry = drill_runner.catalog.lookup(*KEY.split("/"))
    kind, name = entry["steps"][0]["object"].split("/", 1)
    before = admin.json("get", kind, name, "-n", NAMESPACE)
    run = drill_runner.PlaybookRun("schedule.yml", {
        "drill_namespace": NAMESPACE, "drill_schedule_cron": "* * * * *",
        "drill_schedule_drill_vars": DRILL_VARS},
        drill_output / "runner" / "schedule", drill_output / "schedule.log")
    assert run.finish() == 0, open(drill_output / "schedule.log").read()[-3000:]
    scheduled_at = time.time() - 1  # the API server's seconds are whole
    say("CronJob created; waiting for it to fire (at the next minute)")
    job = admin.wait_for("the CronJob's first Job", lambda: next((
        j for j in admin.json("get", "jobs", "-n", control, "-l", "app.kubernetes.io/component=drill-schedule")["items"]
        if drill_runner._epoch(j["metadata"]["creationTimestamp"]) >= scheduled_at), None),  # pylint: disable=protected-access
        timeout=150, interval=1)
    # One drill is enough here: no second firing while this one runs or after.
    admin.run("patch", "cronjob", "opsdrill-drill", "-n", control, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    job_name = job["metadata"]["name"]
    say("fired: Job %s" % job_name)
    done = admin.wait_for("Job %s to finish" % job_name, lambda: (lambda s: s if (s.get("succeeded") or s.get("failed")) else None)(
        admin.json("get", "job", job_name, "-n", control).get("status") or {}), timeout=420, interval=3)
    log = admin.run("logs", "job/%s" % job_name, "-n", control, "--all-containers=true", check=False).stdout
    (drill_output / "scheduled-drill-pod.log").write_text(log)
    yield {"job": job, "status": done, "log": log, "entry": entry, "before": before,
           "after": admin.json("get", kind, name, "-n", NAMESPACE), "control": control}
    if os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        drill_runner.delete_namespace(lab, NAMESPACE)


def test_the_cronjob_fires_a_drill_pod_that_passes(lab, admin, scheduled):
    assert scheduled["status"].get("succeeded") == 1, (scheduled["status"], scheduled["log"][-3000:])
    assert "PLAY RECAP" in scheduled["log"] and "failed=0" in scheduled["log"], scheduled["log"][-3000:]
    pod = admin.json("get", "pods", "-n", scheduled["control"], "-l",
                     "job-name=%s" % scheduled["job"]["metadata"]["name"])["items"][0]
    assert pod["spec"]["serviceAccountName"] == ACCOUNT
    assert pod["spec"]["containers"][0]["image"] == "localhost/opsdrill/ee:1"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    # Rolled back: the fault's object is as it was, the stack steady.
    assert _comparable(scheduled["after"]) == _comparable(scheduled["before"])
    client = drill_runner.KubectlClient(lab["kubectl"], lab["admin_kubeconfig"])
    assert not drill_runner.steady_problems(client, NAMESPACE)


def test_the_injection_came_from_the_pods_service_account(lab, scheduled):
    """The audit log: the fault's change was made by the runner's ServiceAccount, this long
    after the CronJob fired (the Job's creation)."""
    fired = drill_runner._epoch(scheduled["job"]["metadata"]["creationTimestamp"])  # pylint: disable=protected-access
    kind, name = scheduled["entry"]["steps"][0]["object"].split("/", 1)
    account = "system:serviceaccount:%s:%s" % (scheduled["control"], ACCOUNT)
    changes = []
    with open(lab["audit_log"], encoding="utf-8") as handle:
        for line in handle:
            if name not in line or '"ResponseComplete"' not in line:
                continue
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            at = drill_runner._epoch(entry["requestReceivedTimestamp"])  # pylint: disable=protected-access
            if (at >= fired and ref.get("namespace") == NAMESPACE and ref.get("name") == name
                    and entry["verb"] in ("update", "patch")):
                changes.append((at, entry["user"]["username"]))
    assert changes, "no change of %s/%s in the audit log after the firing" % (kind, name)
    injected_at, user = min(changes)
    assert user == account, changes
    say("CronJob fired -> fault injected: %.1f s" % (injected_at - fired))


def test_the_scorecard_is_kept_on_the_desk(lab, admin, scheduled):
    trainer_kubeconfig = sorted(lab["trainer_kubeconfigs"].values())[0]
    desk = DeskHttp(lab, admin, NAMESPACE)
    status, answer = desk.call("GET", "/api/drills", token_of(trainer_kubeconfig))
    assert status == 200, answer
    drills = [d for d in answer["drills"] if d.get("drill_id", "").startswith(NAMESPACE + "-")]
    assert len(drills) == 1, answer
    drill_id = drills[0]["drill_id"]
    reports = {r["data"]["name"]: r["data"] for r in desk.records(drill_id, token_of(trainer_kubeconfig))
               if r["kind"] == "report"}
    card_name = next(name for name, report in reports.items() if report["content_type"] == "application/json")
    status, card = desk.call("GET", "/api/drills/%s/reports/%s" % (drill_id, card_name), token_of(trainer_kubeconfig))
    assert status == 200, card
    assert (card["drill"]["drill_id"], card["drill"]["fault"]) == (drill_id, DRILL_VARS["fault"])
    assert card["drill"]["result"] == "rolled_back"
    assert card["totals"]["points_max"] == 100 and "time_to_detect" in card["metrics"]
