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

Independent checks: the API server's audit log says who made the drill's changes (the
ServiceAccount, not the lab's admin), the cluster equals the snapshot, the steady state is
back.
"""
import base64
import json
import os
import stat
import sys
import threading
import time

import pytest
import yaml

import drill_runner
from ansible_collections.opsdrill.drills.plugins.module_utils import runner_access
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

pytestmark = pytest.mark.drill

ACCOUNT = "opsdrill-runner"
EXEC = {"namespace": "opsdrill-exec", "key": "outage/configuration/secret_issues"}
# The survey leaves the fault to the seed, as a trainer does who wants it hidden (a named
# fault is in the job's extra variables for every viewer to read).
AWX = {"namespace": "opsdrill-awx", "key": "error_spike/configuration/", "seed": 7}
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


def _grant(admin, namespace):
    """The ServiceAccount and the collection's least-privilege RBAC; a token of it."""
    for obj in runner_access.manifests(namespace, ACCOUNT):
        admin.apply(json.dumps(obj))
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


@pytest.fixture(scope="module")
def drills(lab, admin, drill_output, tmp_path_factory):
    """Both drills, side by side; their results by name."""
    work = tmp_path_factory.mktemp("credentials")
    server, ca = _lab_cluster(admin)
    ca_path = work / "ca.crt"
    ca_path.write_bytes(ca)
    setups = [threading.Thread(target=drill_runner.fresh_namespace,
                               args=(admin, spec["namespace"], drill_output, say, {"incident_desk": "false"}))
              for spec in (EXEC, AWX)]
    for thread in setups:
        thread.start()
    for thread in setups:
        thread.join()
    runners = {
        "exec": drill_runner.DrillRunner(
            EXEC["key"], EXEC["namespace"], lab, drill_output, log=say,
            extra_vars={"opsdrill_kubeconfig": ""},
            envvars={"K8S_AUTH_KUBECONFIG": str(_exec_kubeconfig(work, server, ca_path,
                                                                 _grant(admin, EXEC["namespace"])))}),
        "awx": drill_runner.DrillRunner(
            AWX["key"], AWX["namespace"], lab, drill_output, log=say, generic=True, seed=AWX["seed"],
            inventory=_awx_inventory(),
            envvars={"K8S_AUTH_HOST": server, "K8S_AUTH_API_KEY": _grant(admin, AWX["namespace"]),
                     "K8S_AUTH_SSL_CA_CERT": str(ca_path), "K8S_AUTH_VERIFY_SSL": "True"}),
    }
    results = {}
    threads = [threading.Thread(target=lambda n=name, r=runner: results.__setitem__(n, (r, r.run())))
               for name, runner in runners.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    yield results
    if os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        for spec in (EXEC, AWX):
            drill_runner.delete_namespace(lab, spec["namespace"])


def _audit_writers(lab, result, namespace):
    """Users who changed the drill or control namespace while the drill ran (audit log)."""
    started = drill_runner._first(result.events, "drill_started")["epoch"]  # pylint: disable=protected-access
    finished = drill_runner._first(result.events, "drill_finished")["epoch"]  # pylint: disable=protected-access
    spaces = {namespace, snapshot.control_namespace(namespace)}
    writers = {}
    with open(lab["audit_log"], encoding="utf-8") as handle:
        for line in handle:
            if '"ResponseComplete"' not in line or namespace not in line:
                continue
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            at = drill_runner._epoch(entry["requestReceivedTimestamp"])  # pylint: disable=protected-access
            if (entry.get("verb") in MUTATING and ref.get("namespace") in spaces and started <= at <= finished
                    and ref.get("subresource") != "proxy"):
                user = entry["user"]["username"]
                writers.setdefault(user, set()).add("%s %s" % (entry["verb"], ref.get("resource")))
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
