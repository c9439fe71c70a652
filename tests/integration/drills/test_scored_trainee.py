"""A scripted trainee works a real drill, and the scorecard is checked against evidence
read independently of the scoring: the timeline, the pods' status as the admin sees it,
and the API server's audit log.

outage/resources/memory_limits in namespace opsdrill-trainee (set up with setup.yml and
deleted afterwards unless OPSDRILL_DRILL_KEEP_NAMESPACES=1), response window 240 s. When
ServiceDown fires, the trainee (the lab's trainee kubeconfig: edit in
drill namespaces) investigates like the seed says, rolls backend-api back with
``kubectl rollout undo`` and keeps the incident desk in ``<artifacts dir>/desk.json``
(the drill engine's default desk file).

    pytest tests/integration/drills/test_scored_trainee.py -s
"""
import datetime
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

import drill_runner
from kubectl import Kube
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest  # noqa: E402 (drill_runner's path)

pytestmark = pytest.mark.drill

NAMESPACE = "opsdrill-trainee"
KEY = "outage/resources/memory_limits"
RESPONSE_WINDOW_S = 240
# The team's recovery must hold this long (3 looks at least) before it is recorded.
RECOVERY_HOLD_S = 20
TRAINEE = "trainee-1"
# Pod status times have whole seconds (truncated), the drill and the test read the clock
# in different processes: orderings between them get this much slack.
SLACK_S = 3
# The scorecard cites audit times in milliseconds; the same request in the log.
AUDIT_MATCH_S = 1.0
# A person types slower than kubectl's requests follow each other; the audit classifier
# folds requests of one command that are less than 3 s apart.
PAUSE_S = 4


def say(message):
    print(time.strftime("%H:%M:%S ") + "[trainee test] " + message, flush=True)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_time(text):
    """RFC 3339 (whole seconds to nanoseconds, Z or an offset) -> epoch seconds."""
    text = re.sub(r"\.(\d{1,6})\d*", lambda m: "." + m.group(1).ljust(6, "0"), text.strip())
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def timeline(artifacts_dir):
    return drill_runner._timeline(artifacts_dir)  # pylint: disable=protected-access


def first_event(events, name, by=None):
    return drill_runner._first(events, name, by)  # pylint: disable=protected-access


# --------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def trainee_kube(lab):
    kubeconfigs = lab.get("trainee_kubeconfigs") or {}
    name = TRAINEE if TRAINEE in kubeconfigs else (sorted(kubeconfigs) or [None])[0]
    if name is None:
        if os.environ.get("OPSDRILL_REQUIRE_LAB") == "1":
            pytest.fail("the lab has no trainee kubeconfig (lab.json trainee_kubeconfigs)")
        pytest.skip("the lab has no trainee kubeconfig (lab.json trainee_kubeconfigs)")
    kube = Kube(lab["kubectl"], kubeconfigs[name])
    kube.user = name
    return kube


@pytest.fixture(scope="module")
def trainee_ns(lab, admin, drill_output):
    # Without the incident desk: this team keeps its desk in a file (self-reported), and
    # the drill goes on without a desk (test_incident_desk.py has the desk).
    drill_runner.fresh_namespace(admin, NAMESPACE, drill_output, say, {"incident_desk": "false"})
    yield NAMESPACE
    if os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        drill_runner.delete_namespace(lab, NAMESPACE)


# --------------------------------------------------------------------------------------
# the admin's view of backend-api's pods

class PodWatch:
    """Polls backend-api's pods as the admin and keeps every OOMKilled termination seen
    (the first one shows only until the container is killed again)."""

    def __init__(self, admin, namespace):
        self.admin = admin
        self.namespace = namespace
        self.oom = {}  # (pod, container, finishedAt) -> epoch
        self.oom_hashes = set()  # pod-template-hash of the crashing pods: the faulty ReplicaSet
        self.stop = threading.Event()
        self.errors = []

    def pods(self):
        return self.admin.json("get", "pods", "-n", self.namespace, "-l", "app=backend-api")["items"]

    def record(self, pods):
        for pod in pods:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                for state in (status.get("state") or {}, status.get("lastState") or {}):
                    term = state.get("terminated") or {}
                    if term.get("reason") == "OOMKilled" and term.get("finishedAt"):
                        key = (pod["metadata"]["name"], status["name"], term["finishedAt"])
                        self.oom[key] = parse_time(term["finishedAt"])
                        self.oom_hashes.add(pod["metadata"]["labels"].get("pod-template-hash"))

    def run(self):
        while not self.stop.is_set():
            try:
                self.record(self.pods())
            except (AssertionError, ValueError, OSError, subprocess.SubprocessError) as exc:
                self.errors.append(str(exc))
            self.stop.wait(1.0)

    def first_oom(self):
        return min(self.oom.values()) if self.oom else None


def ready_since(pod):
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return parse_time(cond["lastTransitionTime"])
    return None


# --------------------------------------------------------------------------------------
# the trainee

class Desk:
    """The team's incident desk: a JSON array, rewritten whole (atomically) per entry."""

    def __init__(self, path, author):
        self.path = Path(path)
        self.author = author
        self.entries = []

    def post(self, kind, text):
        self.entries.append({"ts": iso(utc_now()), "author": self.author, "kind": kind, "text": text})
        tmp = self.path.with_name(".desk.json.tmp")
        tmp.write_text(json.dumps(self.entries, indent=1) + "\n")
        os.replace(tmp, self.path)


class Trainee:
    def __init__(self, kube, namespace, desk):
        self.kube = kube
        self.namespace = namespace
        self.desk = desk
        self.commands = []  # (argv, started epoch, ended epoch, rc)

    def kubectl(self, *args, check=True, pause=True):
        started = time.time()
        proc = self.kube.run(*args, check=False)
        self.commands.append((list(args), started, time.time(), proc.returncode))
        say("%s: kubectl %s -> rc %d" % (self.kube.user, " ".join(args), proc.returncode))
        if check and proc.returncode != 0:
            raise AssertionError("trainee's kubectl %s failed: %s" % (" ".join(args), proc.stderr.strip()))
        if pause:
            time.sleep(PAUSE_S)
        return proc

    def crashed_backend_pod(self, timeout=90):
        """``kubectl get pods`` until a backend-api pod shows restarts (there are previous logs)."""
        deadline = time.time() + timeout
        while True:
            out = self.kubectl("get", "pods", "-n", self.namespace).stdout
            for line in out.splitlines()[1:]:
                cols = line.split()
                if cols and cols[0].startswith("backend-api-") and cols[3].isdigit() and int(cols[3]) > 0:
                    return cols[0]
            assert time.time() < deadline, "no backend-api pod with restarts in:\n%s" % out

    def silence(self):
        """Acknowledge the page the way an on-call does: a silence in Alertmanager, through
        the API server's service proxy (the audit log witnesses who and when)."""
        now = utc_now()
        body = {"matchers": [{"name": "alertname", "value": "ServiceDown", "isRegex": False},
                             {"name": "namespace", "value": self.namespace, "isRegex": False}],
                "startsAt": iso(now), "endsAt": iso(now + datetime.timedelta(minutes=30)),
                "createdBy": self.kube.user, "comment": "acknowledged, investigating"}
        path = "/api/v1/namespaces/%s/services/alertmanager:9093/proxy/api/v2/silences" % (
            drill_runner.snapshot.control_namespace(self.namespace))
        # (kubectl create --raw sends no JSON content type, which Alertmanager refuses.)
        client = k8s_rest.Client.from_env(self.kube.kubeconfig, None, timeout=15)
        answer = client.request("POST", path, body=body)
        say("%s: silence ServiceDown -> %s" % (self.kube.user, answer))
        assert (answer or {}).get("silenceID"), answer

    def investigate_and_fix(self):
        self.silence()
        self.desk.post("acknowledge", "ServiceDown for backend-api acknowledged, %s is on it" % self.desk.author)
        self.desk.post("incident_log", "ServiceDown fired: backend-api unreachable, SEO tool backend down")
        self.desk.post("team_coordination", "%s investigates backend-api; nobody else changes it" % self.desk.author)
        pod = self.crashed_backend_pod()
        # A trainee who tries to peek at the drill's answer key in the control namespace: the API
        # server refuses it (trainees hold no role there), and the scorecard flags the attempt.
        self.kubectl("get", "configmap", "opsdrill-drill-state", "-n",
                     drill_runner.snapshot.control_namespace(self.namespace), "-o", "yaml", check=False)
        self.kubectl("describe", "pod", pod, "-n", self.namespace)
        self.kubectl("logs", pod, "-n", self.namespace, "--previous", check=False)
        self.desk.post("status_update", "Investigating: backend-api pods are OOMKilled and restarting")
        self.desk.post("incident_log", "Diagnosis: backend-api OOMKilled (exit 137), memory limit lowered")
        self.kubectl("rollout", "history", "deployment/backend-api", "-n", self.namespace)
        self.kubectl("rollout", "undo", "deployment/backend-api", "-n", self.namespace, pause=False)
        return pod

    def document(self):
        self.desk.post("document_fix", "kubectl rollout undo deployment/backend-api: back to the release "
                                       "before the memory limit change")
        self.desk.post("incident_log", "Fix: rolled back backend-api; new pods starting")
        self.desk.post("user_notification", "The SEO tool backend is recovering; no action needed on your side")
        self.desk.post("management_brief", "Backend outage caused by a too-small memory limit; rolled back")

    def verify_and_close(self):
        self.kubectl("get", "pods", "-n", self.namespace)
        self.desk.post("status_update", "Resolved: backend-api ready again after the rollback")
        self.desk.post("postmortem", "Memory limit cut to 12Mi in a cost review release; backend-api "
                                     "OOMKilled. Action: memory limits need a load test before release.")


# --------------------------------------------------------------------------------------
# the audit log, read here (not through the scoring code)

def trainee_audit_events(path, user):
    events = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if user not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the line being written
            if event.get("stage") == "ResponseComplete" and (event.get("user") or {}).get("username") == user:
                event["_epoch"] = parse_time(event["requestReceivedTimestamp"])
                events.append(event)
    return events


READS = ("get", "list")
WRITES = ("patch", "update", "create")


def consistent(action, summary, event):
    """Does the audit event fit the scorecard's action (verb, resource, subresource)?"""
    ref = event.get("objectRef") or {}
    verb, resource, sub = event.get("verb"), ref.get("resource"), ref.get("subresource")
    uri = event.get("requestURI") or ""
    expected = {
        "list_pods": verb == "list" and resource == "pods" and not sub,
        "check_dependencies": verb == "list" and resource == "pods" and not sub,
        "resolve_log_pods": verb == "list" and resource == "pods" and not sub,
        "get_pod": verb == "get" and resource == "pods" and not sub,
        "get_events": verb in READS and resource == "events",
        "logs": verb == "get" and resource == "pods" and sub == "log"
        and (("previous=true" in uri) == ("(--previous)" in summary)),
        "inspect_revisions": verb in READS and resource in ("replicasets", "controllerrevisions"),
        "inspect_deployment": verb in READS and resource == "deployments",
        "inspect_config": verb in READS and resource in ("configmaps", "secrets"),
        "read_drill_state": verb in READS and resource == "configmaps" and ref.get("name") == "opsdrill-drill-state",
        "check_endpoints": verb in READS and resource in ("services", "endpoints", "endpointslices"),
        "resolve_target": verb in READS,
        "rollout_undo": verb in WRITES and resource == "deployments" and not sub,
        "rollout_restart": verb in WRITES and resource == "deployments" and not sub,
        "edit_deployment": verb in WRITES and resource == "deployments",
        "check_access": verb == "create" and (resource or "").endswith("reviews"),
    }
    return expected.get(action, True)


# --------------------------------------------------------------------------------------

def test_scored_trainee(lab, admin, trainee_kube, trainee_ns, drill_output):
    runner = drill_runner.DrillRunner(KEY, trainee_ns, lab, drill_output, response_window_s=RESPONSE_WINDOW_S,
                                      extra_vars={"recovery_hold_s": RECOVERY_HOLD_S}, log=say)
    artifacts = runner.artifacts_dir
    outcome = {}

    def drill():
        try:
            outcome["result"] = runner.run()
        except Exception as exc:  # reported by the test below, never a hung thread
            outcome["error"] = repr(exc)

    drill_thread = threading.Thread(target=drill, daemon=True, name="drill-" + trainee_ns)
    drill_thread.start()
    watch = PodWatch(admin, trainee_ns)
    watch_thread = threading.Thread(target=watch.run, daemon=True, name="podwatch-" + trainee_ns)
    desk = Desk(artifacts / "desk.json", trainee_kube.user)
    trainee = Trainee(trainee_kube, trainee_ns, desk)

    def wait_for(event, timeout, by=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = first_event(timeline(artifacts), event, by)
            if found:
                return found
            if not drill_thread.is_alive():
                break
            time.sleep(0.5)
        pytest.fail("no %s in %s/timeline.jsonl (drill %s, log %s): %s" % (
            event, artifacts, runner.drill_id, drill_output / ("%s.log" % runner.drill_id), outcome.get("error")))

    try:
        wait_for("fault_injected", 300)
        watch_thread.start()
        alert = wait_for("alert_firing", runner.entry["alert_within_s"] + 60)
        say("alert firing after %.1f s: the trainee starts" % alert["data"]["latency_s"])
        trainee.investigate_and_fix()
        fix_done = time.time()
        # Just after the fix, as the admin: the crashed pods' last terminations (the
        # watch has seen the earlier ones). The undo brings back the pre-fault template,
        # so the new pods are those of any other ReplicaSet than the crashing ones.
        watch.record(watch.pods())
        faulty_hashes = set(watch.oom_hashes)
        assert faulty_hashes, "the admin saw no OOMKilled backend-api container"
        time.sleep(PAUSE_S)
        trainee.document()
        deadline = time.time() + 180
        while True:
            pods = [p for p in watch.pods() if not p["metadata"].get("deletionTimestamp")]
            new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") not in faulty_hashes]
            ready = [ready_since(p) for p in new]
            if len(new) == len(pods) and new and all(ready):
                break
            assert time.time() < deadline, "backend-api's new pods not all Ready: %s" % [
                (p["metadata"]["name"], p["status"].get("phase")) for p in pods]
            time.sleep(1)
        new_ready_at = max(ready)
        say("new backend-api pods ready: %s" % ", ".join(p["metadata"]["name"] for p in new))
        trainee.verify_and_close()
    finally:
        watch.stop.set()
        # Also after a failure: the drill rolls back by itself; the namespace is deleted
        # only once it has ended.
        drill_thread.join(timeout=RESPONSE_WINDOW_S + 900)
    assert not drill_thread.is_alive(), "the drill did not end"
    assert "error" not in outcome, "harness error: %s" % outcome.get("error")
    result = outcome["result"]
    context = "drill %s (log %s)" % (result.drill_id, result.log)

    # The drill itself: recovered by the team, then rolled back and verified as always.
    assert result.rc == 0, "%s: ansible-playbook failed: %s" % (context, result.failure)
    assert result.verify == "verify_passed", context
    assert result.differences == [] and result.leftovers == [], (context, result.differences, result.leftovers)
    events = timeline(artifacts)
    assert first_event(events, "drill_finished")["data"]["result"] == "recovered_by_team", context
    card = json.loads((artifacts / "scorecard.json").read_text())
    assert card["drill"]["result"] == "recovered_by_team"
    metrics = card["metrics"]

    injected = first_event(events, "fault_injected")["epoch"]
    alerted = first_event(events, "alert_firing")["epoch"]
    restored = first_event(events, "steady_state_restored", by="team")
    window_end = first_event(events, "response_window_ended")
    assert restored is not None, "%s: no steady_state_restored by the team in the timeline" % context

    # Time to detect: exactly the timeline's alert_firing - fault_injected, and the pods
    # really were OOMKilled in between.
    detect = metrics["time_to_detect"]["seconds"]
    assert detect == pytest.approx(alerted - injected, abs=0.002), metrics["time_to_detect"]
    first_oom = watch.first_oom()
    assert first_oom is not None, "the admin saw no OOMKilled backend-api container (errors: %s)" % watch.errors[-3:]
    assert injected - SLACK_S <= first_oom <= alerted + SLACK_S, (
        "first OOMKilled at %s, injected %s, alert %s" % (first_oom, injected, alerted))

    # Time to recover: by the team, after the new pods were Ready, inside the window.
    recover = metrics["time_to_recover"]
    assert recover["seconds"] is not None and recover["recovered_by"] == "team", recover
    assert recover["seconds"] == pytest.approx(restored["epoch"] - injected, abs=0.002), recover
    assert new_ready_at - SLACK_S <= restored["epoch"] < window_end["epoch"], (
        "steady_state_restored %s, new pods ready %s, window ended %s" % (restored["epoch"], new_ready_at,
                                                                          window_end["epoch"]))
    assert window_end["data"]["reason"] == "recovered"

    # Every trainee action in the scorecard is a request of the trainee in the audit log,
    # at the same time and of the same kind (read here from the log itself).
    audit = trainee_audit_events(lab["audit_log"], trainee_kube.user)
    used = set()
    actions = card["actions"]
    assert actions, "the scorecard lists no trainee action"
    started = first_event(events, "drill_started")["epoch"]
    finished = first_event(events, "drill_finished")["epoch"]
    for action in actions:
        assert action.get("actor") == trainee_kube.user, action
        at = parse_time(action["ts"])
        # This drill's only: earlier drills in the namespace are in the same audit log.
        assert started - 0.001 <= at <= finished + 0.001, action
        matches = [i for i, e in enumerate(audit) if i not in used and abs(e["_epoch"] - at) <= AUDIT_MATCH_S
                   and consistent(action["action"], action["summary"], e)]
        assert matches, "no trainee request in the audit log for %s" % action
        best = min(matches, key=lambda i: abs(audit[i]["_epoch"] - at))
        used.add(best)

    response_end = parse_time(metrics["response_window"]["to"])
    in_window = [a for a in actions if injected - 0.001 <= parse_time(a["ts"]) <= response_end]
    names = {a["action"] for a in in_window}
    for wanted in ("list_pods", "logs", "inspect_revisions", "rollout_undo"):
        assert wanted in names, "%s missing from the scorecard's actions: %s" % (wanted, sorted(names))
    assert names & {"get_pod", "get_events"}, sorted(names)
    assert any(a["action"] == "logs" and "(--previous)" in a["summary"] for a in in_window), in_window
    undo = [a for a in in_window if a["action"] == "rollout_undo"]
    assert len(undo) == 1 and undo[0].get("fix") == "cause", undo
    assert parse_time(undo[0]["ts"]) <= fix_done
    fixes = card["fix_assessment"]
    assert fixes["level"] == "cause_fixed_recovered" and fixes["symptom_fixes"] == [], fixes
    assert [f["action"] for f in fixes["cause_fixes"]] == ["rollout_undo"], fixes

    # The desk file was read (the engine's default desk file), but it is self-reported: it
    # earns nothing under the default rubric, and says what it would have earned.
    sources = {s["name"]: s for s in card["sources"]}
    assert sources["desk"]["available"] and sources["desk"]["items"] == len(desk.entries), sources["desk"]
    assert sources["desk"]["trust"] == "self_reported" and sources["audit"]["trust"] == "machine", sources
    assert sources["audit"]["available"], sources["audit"]
    # No desk service in this namespace: the drill went on, nothing is witnessed.
    assert not sources["incident_desk"]["available"], sources["incident_desk"]
    criteria = {c["id"]: c for c in card["criteria"]}
    by_source = card["totals"]["points_by_source"]
    assert by_source["self_reported"] == 0 and by_source["self_reported_withheld"] > 0, by_source
    assert by_source["machine"] == card["totals"]["points"], by_source
    for cid in ("process.communication", "documentation.incident_record", "documentation.status_updates",
                "documentation.recovery_steps", "documentation.postmortem"):
        assert criteria[cid]["status"] == "not_assessed" and criteria[cid]["points_by_source"][
            "self_reported_withheld"] > 0, criteria[cid]
    for cid in ("technical.service_recovery", "technical.problem_solving", "technical.log_analysis"):
        assert criteria[cid]["points"] == criteria[cid]["points_max"], criteria[cid]
    # The acknowledgement is the silence, at the audit log's time of its request (the desk
    # file's "acknowledge" is a claim).
    silences = [e for e in audit if e.get("verb") == "create" and "/silences" in (e.get("requestURI") or "")
                and started <= e["_epoch"] <= finished]
    assert len(silences) == 1 and (silences[0].get("responseStatus") or {}).get("code", 200) < 300, silences
    ack = metrics["time_to_acknowledge"]
    assert ack["acknowledged_by"]["action"] == "silence_alert", ack
    assert ack["seconds"] == pytest.approx(silences[0]["_epoch"] - alerted, abs=0.01), ack

    # The other four reports carry the same facts: the fix at the audit log's time of the
    # undo request (UTC, HH:MM:SS) and the measured time to detect.
    undo_request = [e for e in audit if started <= e["_epoch"] <= finished and e.get("verb") == "patch"
                    and (e.get("objectRef") or {}).get("resource") == "deployments"]
    assert len(undo_request) == 1, undo_request
    undo_clock = time.strftime("%H:%M:%S", time.gmtime(int(undo_request[0]["_epoch"])))
    reports = {name: (artifacts / name).read_text() for name in
               ("junit.xml", "incident-record.md", "postmortem.md", "scorecard.html")}
    for name in ("incident-record.md", "postmortem.md", "scorecard.html"):
        assert undo_clock in reports[name] and "rollout undo" in reports[name], name
    assert 'name="time_to_detect_s" value="%s"' % detect in reports["junit.xml"], reports["junit.xml"][:2000]

    # The peek at the drill state is on the scorecard for the trainer, at the audit log's time.
    integrity = card["integrity"]
    assert integrity["review_required"] is True, integrity
    peeks = [f for f in integrity["findings"] if f["actor"] == trainee_kube.user]
    assert len(peeks) == 1 and peeks[0]["name"] == "opsdrill-drill-state" and not peeks[0]["shown"], integrity
    peek_requests = [e for e in audit if (e.get("objectRef") or {}).get("name") == "opsdrill-drill-state"
                     and (e.get("objectRef") or {}).get("resource") == "configmaps" and started <= e["_epoch"] <= finished]
    assert peek_requests, "the trainee's read of the drill state is not in the audit log"
    assert {(e.get("responseStatus") or {}).get("code") for e in peek_requests} == {403}, \
        "the API server must refuse the trainee's read of the drill state"
    assert abs(parse_time(peeks[0]["first_at"]) - peek_requests[0]["_epoch"]) <= AUDIT_MATCH_S, (peeks, peek_requests[0])
    assert any("answer key" in w for w in card["warnings"]), card["warnings"]

    figures = {
        "drill_id": result.drill_id, "time_to_detect_s": detect, "time_to_recover_s": recover["seconds"],
        "time_to_acknowledge_s": metrics["time_to_acknowledge"]["seconds"],
        "points_by_source": card["totals"]["points_by_source"],
        "recovery_held_s": restored["data"].get("held_s"),
        "first_oom_after_injection_s": round(first_oom - injected, 1),
        "new_pods_ready_after_injection_s": round(new_ready_at - injected, 1),
        "actions": sorted(names), "actions_matched": len(used), "desk_entries": len(desk.entries),
        "points": card["totals"]["points"], "percent": card["totals"]["percent"], "result": card["totals"]["result"],
    }
    (drill_output / ("%s.trainee.json" % result.drill_id)).write_text(json.dumps(figures, indent=1))
    say("figures: %s" % json.dumps(figures))
