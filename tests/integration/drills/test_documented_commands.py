"""The design card's commands, run on the lab exactly as the README and docs/drills.md
write them, with nothing else on the command line:

    ansible-playbook drill-outage.yml -e variant=resources
    ansible-playbook drill-error-spike.yml -e variant=code

They drill the default namespace (seo-tool) with a randomly picked fault and the default
600 s response window. The test plays the team: once the seed alert fires, trainee-1 runs
every command of the drill's seed document exactly as written, through the trainee shell
(scripts/trainee_shell.py; seed_commands.py checks each answer), then the test restores the
objects the fault touched (from the trainer's local copy of the snapshot, with the admin's
credentials), so the window ends on the team's recovery; once the incident desk closes the
drill, trainee-1 submits a post-mortem there, which ends the drill's post-mortem phase
(default 600 s). Checked from outside the product: the exit status, the cluster against
the snapshot (kubectl), no drill object left, and the seed commands in the API server's
audit log under trainee-1's name, as the scorecard lists them.
"""
import json
import os
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import drill_runner
import seed_commands
from desk_http import DeskHttp, token_of
from drill_runner import snapshot

pytestmark = pytest.mark.drill

REPO = drill_runner.REPO
DOCUMENTED = [["drill-outage.yml", "-e", "variant=resources"], ["drill-error-spike.yml", "-e", "variant=code"]]
DOCS = [REPO / "README.md", REPO / "docs" / "drills.md"]
TRAINEE = "trainee-1"
# The audit classifier folds a person's requests less than 3 s apart into one command.
PAUSE_S = 4
# What the seeds' commands are, in the audit log's words (scoring/audit.py), per seed.
SEED_ACTIONS = {"outage": {"list_pods", "get_events", "logs", "view_metrics", "rollout_restart", "scale",
                           "test_endpoint"},
                "error_spike": {"logs", "view_metrics", "rollout_restart", "scale", "cache_flush", "test_endpoint"}}


def _events(artifacts):
    path = Path(artifacts) / "timeline.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _team_restores(lab, namespace, local_state):
    """The team's fix: every touched object back to its snapshot (post-restore steps too)."""
    from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
    from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import restore_plan
    client = k8s_rest.Client.from_env(os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"]), None)
    outcome = restore_plan.restore(client, namespace, local_state["state"], local_state["snapshot"])
    assert outcome["ok"], outcome


def _work_the_seed(admin, namespace, scenario, events, say=print):
    """trainee-1 runs the seed's commands as written in the trainee shell; each answer is
    checked. Deployments the commands scaled are scaled back afterwards (the admin), as a
    team that is done with its experiment would."""
    fault = drill_runner.catalog.lookup(events[0]["scenario"], events[0]["variant"], events[0]["fault"])
    releases = [step["params"]["commit_message"] for step in fault["steps"] if step["handler"] == "release"]
    scaled = {}
    for command in seed_commands.seed_commands(scenario):
        found = re.match(r"kubectl scale deployment (\S+)", command)
        if found and found.group(1) not in scaled:
            scaled[found.group(1)] = admin.json("get", "deployment", found.group(1), "-n", namespace)["spec"]["replicas"]
    results = []
    for command in seed_commands.seed_commands(scenario):
        started = time.time()
        rc, output = seed_commands.run_in_shell(TRAINEE, namespace, command)
        problem = seed_commands.check_answer(command, rc, output, releases[0] if releases else None,
                                             gateway_may_be_down=scenario == "outage")
        say("[seat] %s -> rc %s in %.1f s%s" % (command, rc, time.time() - started, (": " + problem) if problem else ""))
        results.append((command, rc, problem))
        time.sleep(PAUSE_S)
    for name, replicas in scaled.items():
        admin.run("scale", "deployment", name, "-n", namespace, "--replicas=%d" % replicas)
    return results


def test_the_documented_commands_are_in_the_docs():
    text = "\n".join(path.read_text() for path in DOCS)
    for argv in DOCUMENTED:
        assert "ansible-playbook " + " ".join(argv) in text


@pytest.mark.parametrize("argv", DOCUMENTED, ids=["outage-resources", "error-spike-code"])
def test_documented_command_runs_as_written(lab, admin, guard_namespace, argv, tmp_path):
    assert guard_namespace == "seo-tool" or os.environ.get("OPSDRILL_GUARD_NAMESPACE"), guard_namespace
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)  # a checkout's ansible.cfg, as a user runs it
    log_path = tmp_path / "play.log"
    with open(log_path, "w+") as log:
        proc = subprocess.Popen([str(drill_runner.VENV_BIN / "ansible-playbook"), *argv], cwd=str(REPO), env=env,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        desk = DeskHttp(lab, admin, guard_namespace)
        token = token_of(lab["trainee_kubeconfigs"]["trainee-1"])
        artifacts, fixed, written, deadline = None, False, False, time.time() + 900
        scenario, seat = ("outage" if "outage" in argv[0] else "error_spike"), []
        while proc.poll() is None and time.time() < deadline:
            if artifacts is None:
                found = re.search(r"Trainer briefing - (\S+)/briefing\.md", log_path.read_text())
                artifacts = Path(found.group(1)) if found else None
            names = [e["event"] for e in _events(artifacts)] if artifacts else []
            if not fixed and "alert_firing" in names:
                seat = _work_the_seed(admin, guard_namespace, scenario, _events(artifacts))
                local = json.loads((artifacts / "drill-state.json").read_text())
                _team_restores(lab, guard_namespace, local)
                fixed = True
            if fixed and not written and (desk.drill(artifacts.name, token) or {}).get("state") == "closed":
                status, answer = desk.call("POST", "/api/drills/%s/entries" % artifacts.name, token, {
                    "kind": "postmortem", "text": "Restored the touched objects from the release before.",
                    "sections": {"action_items": [{"title": "Review the change", "owner": "trainee-1"}]}})
                assert status == 201, (status, answer)
                written = True
            time.sleep(1)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.seek(0)
        text = log.read()
    assert proc.returncode == 0, text[-4000:]
    assert artifacts is not None and artifacts.parent == Path("~/.local/share/opsdrill/drills").expanduser()
    events = _events(artifacts)
    names = [e["event"] for e in events]
    # The team's briefing tells how to reach everything, and nothing of the answer.
    fault = drill_runner.catalog.lookup(events[0]["scenario"], events[0]["variant"], events[0]["fault"])
    team = (artifacts / "team-briefing.md").read_text()
    record = drill_runner.catalog.load().scenario(scenario)
    assert record["situation"] in team and record["alert"]["name"] in team and "https://api.seo-tool.com" in team
    for secret in (fault["name"], fault["title"], fault["root_cause"][:40], fault["symptom"]["description"][:40]):
        assert secret not in team, "the team briefing gives away %r" % secret
    # Every seed command ran as written in the trainee shell and gave its answer.
    assert [c for c, _rc, _p in seat] == seed_commands.seed_commands(scenario)
    assert not [(c, p) for c, _rc, p in seat if p], [(c, p) for c, _rc, p in seat if p]
    assert events[0]["scenario"] == scenario and events[0]["variant"] == argv[-1].split("=")[1]
    assert events[0]["namespace"] == "seo-tool"
    assert fixed and written and "fault_injected" in names and "alert_firing" in names
    assert events[names.index("response_window_ended")]["data"]["reason"] == "recovered"
    assert "verify_passed" in names and events[-1]["data"]["result"] == "recovered_by_team"
    # From the cluster: every touched object equals its snapshot, nothing of the drill is left.
    local = json.loads((artifacts / "drill-state.json").read_text())
    client = drill_runner.KubectlClient(admin.kubectl, admin.kubeconfig)
    live = {snapshot.ref_of(o): client.get_or_none(o["kind"], o["metadata"]["name"], guard_namespace)
            for o in local["snapshot"]}
    assert snapshot.diff(local["snapshot"], drill_runner.scrubbed_like(local, live)) == []
    secrets = [o for o in local["snapshot"] if o["kind"] == "Secret"]
    assert all(str(v).startswith("<secret sha256:") for o in secrets for v in (o.get("data") or {}).values()), \
        "a verified drill's local copy keeps no Secret values"
    control = snapshot.control_namespace(guard_namespace)
    for kind, name in (("configmap", "opsdrill-drill-state"), ("secret", "opsdrill-drill-state"),
                       ("secret", "opsdrill-drill-key"), ("lease", "opsdrill-drill"), ("job", "opsdrill-deadman")):
        assert admin.run("get", kind, name, "-n", control, check=False).returncode != 0, (kind, name)
    admin.wait_for("the steady state", lambda: not drill_runner.steady_problems(client, guard_namespace),
                   timeout=180)
    # The seed commands are in the API server's audit log as trainee-1's requests (read here),
    # and the scorecard lists them under that name.
    seen = {r["resource"] for r in _audit_actions(lab, events)}
    card = json.loads((artifacts / "scorecard.json").read_text())
    credited = {a["action"] for a in card["actions"] if a.get("actor") == TRAINEE}
    assert SEED_ACTIONS[scenario] <= credited, (sorted(SEED_ACTIONS[scenario] - credited), sorted(credited))
    assert {"services/proxy", "pods/exec" if scenario == "error_spike" else "deployments/scale"} <= seen, seen


def _audit_actions(lab, events):
    """trainee-1's requests in the drill namespace during the drill, read from the audit
    log here: ``{"resource": "services/proxy", ...}``."""
    drill = SimpleNamespace(events=events, audit_log=lab["audit_log"], drill_id=events[0]["drill_id"],
                            namespace=events[0]["namespace"])
    out = []
    for event in drill_runner.trainee_requests(drill):
        if (event.get("user") or {}).get("username") != TRAINEE:
            continue
        ref = event.get("objectRef") or {}
        out.append({"resource": "/".join(p for p in (ref.get("resource"), ref.get("subresource")) if p)})
    return out
