"""Drills with the credentials ops teams really have, run the way AWX runs a job.

Two namespaces, side by side, each drilled by a ServiceAccount that holds only the RBAC
``runner_access.manifests`` grants (the least privilege docs/awx.md documents):

* opsdrill-exec: the kubeconfig's user is an exec plugin, a small script that prints an
  ExecCredential with the ServiceAccount's token (what EKS, GKE and kubelogin do);
* opsdrill-awx: no kubeconfig at all, only K8S_AUTH_HOST, K8S_AUTH_API_KEY and
  K8S_AUTH_SSL_CA_CERT, as AWX's Kubernetes credential sets them, and an inventory without
  the lab's kubeconfig; the drill job template's survey answers go to ansible-runner as its
  extra variables, and the test reads what AWX would show: the job's output while it runs
  and the ``set_stats`` artifacts at the end.

* opsdrill-cron: no controller at all. A CronJob of roles/drill_schedule fires, its pod of
  the lab's execution-environment image (localhost/opsdrill/ee:1) runs drill.yml with
  ansible-runner as the ServiceAccount, and the scorecard is kept on the incident desk
  after the pod is gone.

All three run side by side (one set-up, then the drills together): CI pays for the
slowest, not the sum. Independent checks: the API server's audit log says who made the
drill's changes (the ServiceAccount, not the lab's admin) and when, the cluster equals the
snapshot or this test's own copy, the steady state is back, the desk's archive is read with
the lab trainer's token.
"""
import base64
import os
import stat
import sys
import threading
import time

import pytest
import yaml

import drill_runner
from desk_http import DeskHttp, token_of
from ansible_collections.opsdrill.drills.plugins.filter.awx_survey_spec import awx_survey_spec
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

pytestmark = pytest.mark.drill

ACCOUNT = "opsdrill-runner"
EXEC = {"namespace": "opsdrill-exec", "key": "outage/configuration/secret_issues"}
# The survey leaves the fault to the seed, as a trainer does who wants it hidden (a named
# fault is in the job's extra variables for every viewer to read).
AWX = {"namespace": "opsdrill-awx", "key": "error_spike/configuration/", "seed": 7}
CRON = {"namespace": "opsdrill-cron", "key": "outage/configuration/secret_issues",
        "drill_vars": {"scenario": "outage", "variant": "configuration", "fault": "secret_issues",
                       "response_window_s": 0, "postmortem_window_s": 0}}
MUTATING = {"create", "update", "patch", "delete", "deletecollection"}


def say(message):
    print(time.strftime("%H:%M:%S ") + "[teams' credentials] " + message, flush=True)


def _lab_cluster(admin):
    config = yaml.safe_load(open(admin.kubeconfig, encoding="utf-8"))
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = open(cluster["certificate-authority"], "rb").read()
    return cluster["server"], ca


def _token(admin, namespace):
    """A token of the ServiceAccount setup created with the least-privilege RBAC."""
    return admin.run("create", "token", ACCOUNT, "-n", snapshot.control_namespace(namespace),
                     "--duration=1h").stdout.strip()


def _exec_kubeconfig(directory, server, ca_path, token):
    """A kubeconfig whose user is an exec plugin printing an ExecCredential."""
    token_file = directory / "token"
    token_file.write_text(token)
    plugin = directory / "credential-plugin"
    plugin.write_text("#!%s\nimport json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
                      "'kind': 'ExecCredential', 'status': {'token': open(%r).read().strip()}}))\n"
                      % (sys.executable, str(token_file)))
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    path = directory / "exec.kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": str(ca_path)}}],
        "users": [{"name": "runner", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "runner"}}]}))
    return path


def _awx_inventory():
    """What an AWX inventory for opsdrill holds: localhost and the lab's image names, no
    cluster credentials (those come from the credential)."""
    lab_vars = yaml.safe_load(open(drill_runner.REPO / "inventories" / "lab" / "group_vars" / "all.yml"))
    lab_vars.pop("opsdrill_kubeconfig")
    return {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                            "ansible_python_interpreter": sys.executable}},
                    "vars": lab_vars}}


class _Failed:  # pylint: disable=too-few-public-methods
    """What a drill thread raised; a test that reads it fails with it."""

    def __init__(self, error):
        self.error = error

    def __getitem__(self, key):
        raise AssertionError("this drill did not run to its end: %r" % self.error)


def _keep(results, name, run):
    try:
        results[name] = run()
    except Exception as exc:  # pylint: disable=broad-except
        # Reported by every test that reads this drill.
        say("%s: %r" % (name, exc))
        results[name] = _Failed(exc)


def _comparable(obj):
    """What a drill must give back: the object without the server's bookkeeping."""
    if obj is None:
        return None
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")} | {
        "labels": obj["metadata"].get("labels"), "annotations": obj["metadata"].get("annotations")}


@pytest.fixture(scope="module")
def drills(lab, admin, drill_output, tmp_path_factory):
    """The three drills, side by side; their results by name (exec, awx, cron)."""
    work = tmp_path_factory.mktemp("credentials")
    server, ca = _lab_cluster(admin)
    ca_path = work / "ca.crt"
    ca_path.write_bytes(ca)
    # The scheduled drill keeps its reports on the desk; the others need none.
    setups = [threading.Thread(target=drill_runner.fresh_namespace, args=(
        admin, spec["namespace"], drill_output, say,
        {"incident_desk": str(spec is CRON).lower(), "drill_runner_account": ACCOUNT}))
        for spec in (EXEC, AWX, CRON)]
    for thread in setups:
        thread.start()
    for thread in setups:
        thread.join()
    runners = {
        "exec": drill_runner.DrillRunner(
            EXEC["key"], EXEC["namespace"], lab, drill_output, log=say,
            extra_vars={"opsdrill_kubeconfig": ""},
            envvars={"K8S_AUTH_KUBECONFIG": str(_exec_kubeconfig(work, server, ca_path,
                                                                 _token(admin, EXEC["namespace"])))}),
        "awx": drill_runner.DrillRunner(
            AWX["key"], AWX["namespace"], lab, drill_output, log=say, generic=True, seed=AWX["seed"],
            inventory=_awx_inventory(),
            envvars={"K8S_AUTH_HOST": server, "K8S_AUTH_API_KEY": _token(admin, AWX["namespace"]),
                     "K8S_AUTH_SSL_CA_CERT": str(ca_path), "K8S_AUTH_VERIFY_SSL": "True"}),
    }
    results = {}
    threads = [threading.Thread(target=_keep, args=(results, name, lambda r=runner: (r, r.run())))
               for name, runner in runners.items()]
    threads.append(threading.Thread(target=_keep, args=(results, "cron", lambda: drill_runner.scheduled_drill(
        admin, CRON["namespace"], CRON["key"], CRON["drill_vars"], drill_output, say))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    yield results
    if os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        for spec in (EXEC, AWX, CRON):
            drill_runner.delete_namespace(lab, spec["namespace"])


def _audit_writers(lab, result, namespace):
    """Users who changed the drill or control namespace while the drill ran (audit log)."""
    started = drill_runner._first(result.events, "drill_started")["epoch"]  # pylint: disable=protected-access
    finished = drill_runner._first(result.events, "drill_finished")["epoch"]  # pylint: disable=protected-access
    spaces = {namespace, snapshot.control_namespace(namespace)}
    writers = {}
    for _at, entry in drill_runner.audit_entries(lab["audit_log"], started, finished, (namespace,), "ResponseComplete"):
        ref = entry.get("objectRef") or {}
        if entry.get("verb") in MUTATING and ref.get("namespace") in spaces and ref.get("subresource") != "proxy":
            writers.setdefault(entry["user"]["username"], set()).add("%s %s" % (entry["verb"], ref.get("resource")))
    return writers


@pytest.mark.parametrize("name", ["exec", "awx"])
def test_the_drill_passes_with_the_teams_credentials(lab, drills, name):
    runner, result = drills[name]
    context = "%s (log %s)" % (result.key, result.log)
    assert result.rc == 0, "%s: %s\n%s" % (context, result.failure, open(result.log).read()[-3000:])
    assert result.verify == "verify_passed", context
    assert result.symptom_s is not None, "%s: this test's monitor never saw the symptom" % context
    assert not result.differences and not result.leftovers, (context, result.differences, result.leftovers)
    assert not result.steady_problems, (context, result.steady_problems)
    account = "system:serviceaccount:%s:%s" % (snapshot.control_namespace(runner.namespace), ACCOUNT)
    writers = _audit_writers(lab, result, runner.namespace)
    # The drill's changes were made with the team's credential; the lab's admin made none
    # (the switch's own ServiceAccount and controllers may appear: they act for the drill).
    assert account in writers, (context, writers)
    assert not [user for user in writers if "admin" in user], (context, writers)


def test_the_awx_run_got_what_the_drill_templates_survey_passes(drills):
    """The extra variables of the AWX-style run are the answers of the survey awx.yml
    creates (filter awx_survey_spec over the catalog), each valid as AWX checks it."""
    runner, _result = drills["awx"]
    playbook, extravars = runner.playbook_run.playbook, runner.playbook_run.extravars
    spec = awx_survey_spec([])["spec"]
    answers = {"scenario": "error_spike", "variant": "configuration", "fault": "",
               "drill_namespace": AWX["namespace"], "response_window_s": 0, "drill_seed": AWX["seed"]}
    assert {q["variable"] for q in spec} == set(answers)
    for question in spec:
        answer = answers[question["variable"]]
        assert answer != "" or not question["required"], question["variable"]
        if question["type"] == "multiplechoice" and answer != "":
            assert answer in question["choices"], (question["variable"], question["choices"])
        if question["type"] == "integer":
            assert isinstance(answer, int) and question["min"] <= answer <= question["max"], question
        assert extravars[question["variable"]] == answer, question["variable"]
    assert playbook == "drill.yml"


def test_awx_sees_the_scorecard_and_no_fault_before_the_drill_ends(drills):
    """What a job viewer reads while the drill runs - the output and every event's data (task
    results included, whatever the verbosity) - names neither the fault nor its title, nor
    the value the fault changed; set_stats at the end carries the scorecard."""
    runner, result = drills["awx"]
    run = runner.playbook_run
    fault = result.key.split("/")[2]
    assert fault, "the drill's timeline never said which fault the seed picked"
    finished = drill_runner._first(result.events, "drill_finished")["epoch"]  # pylint: disable=protected-access
    live = run.stdout_until(finished)
    assert "Inject the fault" in live, "the job's output is not the drill's"
    data = run.event_data_until(finished)
    assert '"Inject the fault"' in data
    for secret in (fault, fault.replace("_", " "), runner.entry["title"]):
        assert secret not in live, "the job's output shows %r before the drill ended" % secret
        assert secret not in data, "the job's events show %r before the drill ended" % secret
    stats = result.stats
    assert stats["opsdrill_scorecard"]["drill_id"] == runner.drill_id
    assert set(stats["opsdrill_scorecard"]) >= {"percent", "time_to_detect_s", "criteria", "result"}
    assert stats["opsdrill_drill"]["fault"] == fault  # after the end, the trainer may see it
    assert stats["opsdrill_drill"]["namespace"] == runner.namespace


def test_the_cronjob_fires_a_drill_pod_that_passes(lab, admin, drills):
    scheduled = drills["cron"]
    assert scheduled["status"].get("succeeded") == 1, (scheduled["status"], scheduled["log"][-3000:])
    assert "PLAY RECAP" in scheduled["log"] and "failed=0" in scheduled["log"], scheduled["log"][-3000:]
    pod = admin.json("get", "pods", "-n", scheduled["control"], "-l",
                     "job-name=%s" % scheduled["job"]["metadata"]["name"])["items"][0]
    assert pod["spec"]["serviceAccountName"] == ACCOUNT
    assert pod["spec"]["containers"][0]["image"] == "localhost/opsdrill/ee:1"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    # Rolled back: the fault's object is as it was, the stack steady.
    assert _comparable(scheduled["after"]) == _comparable(scheduled["before"])
    # As the harness does after every drill: an alert may still fire from the rate window
    # of the outage, and must clear.
    client = drill_runner.KubectlClient(lab["kubectl"], lab["admin_kubeconfig"])
    admin.wait_for("the steady state in %s" % CRON["namespace"],
                   lambda: not drill_runner.steady_problems(client, CRON["namespace"]), timeout=90, interval=3)


def test_the_injection_came_from_the_pods_service_account(lab, drills):
    """The audit log: the fault's change was made by the runner's ServiceAccount, this long
    after the CronJob fired (the Job's creation)."""
    scheduled = drills["cron"]
    fired = drill_runner.epoch(scheduled["job"]["metadata"]["creationTimestamp"])
    kind, name = scheduled["entry"]["steps"][0]["object"].split("/", 1)
    account = "system:serviceaccount:%s:%s" % (scheduled["control"], ACCOUNT)
    changes = drill_runner.audited_changes(lab["audit_log"], CRON["namespace"], name, fired)
    assert changes, "no change of %s/%s in the audit log after the firing" % (kind, name)
    injected_at, user = min(changes)
    assert user == account, changes
    say("CronJob fired -> fault injected: %.1f s" % (injected_at - fired))


def test_the_scorecard_is_kept_on_the_desk(lab, admin, drills):
    trainer_kubeconfig = sorted(lab["trainer_kubeconfigs"].values())[0]
    desk = DeskHttp(lab, admin, CRON["namespace"])
    status, answer = desk.call("GET", "/api/drills", token_of(trainer_kubeconfig))
    assert status == 200, answer
    drills = [d for d in answer["drills"] if d.get("drill_id", "").startswith(CRON["namespace"] + "-")]
    assert len(drills) == 1, answer
    drill_id = drills[0]["drill_id"]
    reports = {r["data"]["name"]: r["data"] for r in desk.records(drill_id, token_of(trainer_kubeconfig))
               if r["kind"] == "report"}
    card_name = next(name for name, report in reports.items() if report["content_type"] == "application/json")
    status, card = desk.call("GET", "/api/drills/%s/reports/%s" % (drill_id, card_name), token_of(trainer_kubeconfig))
    assert status == 200, card
    assert (card["drill"]["drill_id"], card["drill"]["fault"]) == (drill_id, CRON["drill_vars"]["fault"])
    assert card["drill"]["result"] == "rolled_back"
    assert card["totals"]["points_max"] == 100 and "time_to_detect" in card["metrics"]
