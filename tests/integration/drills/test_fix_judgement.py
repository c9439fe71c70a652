"""A scripted trainee fixes, hides or pretends to fix real faults, and the scorecard's
verdict on the fix is checked against this test's own reading of the cluster.

Four faults of four variants, three runs each, every run a real drill on the lab:

* ``real``: the fix that removes the cause (for memory_limits a *different* working
  value, 128Mi, not the snapshot's; logic_errors needs both halves);
* ``symptom``: what only hides the symptom (``rollout restart``, deleting pods, or
  ``redis-cli FLUSHDB`` alone on logic_errors), after polling the pods before the alert;
* ``cosmetic``: ``kubectl annotate``.

"No action" is every drill of test_faults.py (response window 0): it checks there that
no action earns no fix credit and no recovery.

For each run the test reads the touched object itself, as the admin, before the drill,
after the injection and after the trainee's command, and diffs them with its own code
(not plugins/module_utils/fix_state.py): whether the fault's change is still there is
this diff's word, whether the service is still broken Prometheus' own ALERTS series.
The drills run in the drill pool's namespaces once the pool is done (or in their own),
three side by side, with a recovery hold of 15 s (3 looks 5 s apart).

OPSDRILL_RECORD_FIXTURES=<dir> also writes each run's evidence there (timeline, audit
log excerpt, catalog entry, the objects as read): scripts/record_scoring_fixtures.py.
"""
import json
import os
import queue
import shutil
import threading
import time
from pathlib import Path

import pytest

import drill_runner
from kubectl import Kube

pytestmark = pytest.mark.drill

HOLD_S = 15
PAUSE_S = 4
# Per fault: the response window (the same for every run: a run that does not
# recover fails for what it did, not for less time) and the three scripted runs.
# "cause": where in the object this test says the cause lies (path prefixes of its own
# reading): the memory limit, not the request the fault lowered with it; the release's
# pod spec, not its version label. The slowest first.
FAULTS = {
    "error_spike/code/logic_errors": {"window_s": 90, "object": "Deployment/api-gateway",
                                      "cause": ("spec.template.spec.",)},
    "outage/resources/memory_limits": {"window_s": 90, "object": "Deployment/backend-api",
                                       "cause": ("spec.template.spec.containers[0].resources.limits",)},
    "outage/configuration/environment_vars": {"window_s": 90, "object": "Deployment/backend-api",
                                              "cause": ("spec.template.spec.containers[0].env",)},
    "outage/dependencies/database_down": {"window_s": 90, "object": "Deployment/postgres",
                                          "cause": ("spec.replicas",)},
}
KINDS = ("real", "symptom", "cosmetic")
RUNS = [(key, kind) for key in FAULTS for kind in KINDS]
TRAINEE = "trainee-1"


def say(message):
    print(time.strftime("%H:%M:%S ") + "[fix judgement] " + message, flush=True)


# --------------------------------------------------------------------------------------
# the scripted trainee: what each run does once the alert fires

def _real(kubectl, key, ns):
    if key.endswith("memory_limits"):
        # A different working value, not the snapshot's.
        return [kubectl("set", "resources", "deployment/backend-api", "-n", ns, "--limits=memory=128Mi")]
    if key.endswith("environment_vars"):
        return [kubectl("rollout", "undo", "deployment/backend-api", "-n", ns)]
    if key.endswith("database_down"):
        # The database back, then the backend restarted to create its schema again.
        return [kubectl("scale", "deployment/postgres", "-n", ns, "--replicas=1"),
                kubectl("rollout", "status", "deployment/postgres", "-n", ns, "--timeout=90s"),
                kubectl("rollout", "restart", "deployment/backend-api", "-n", ns)]
    return [kubectl("rollout", "undo", "deployment/api-gateway", "-n", ns),
            kubectl("rollout", "status", "deployment/api-gateway", "-n", ns, "--timeout=90s"),
            kubectl("exec", "deploy/redis", "-n", ns, "--", "redis-cli", "FLUSHDB")]


def _symptom(kubectl, key, ns):
    if key.endswith("database_down"):
        return [kubectl("delete", "pods", "-l", "app=backend-api", "-n", ns, "--wait=false")]
    if key.endswith("logic_errors"):
        return [kubectl("exec", "deploy/redis", "-n", ns, "--", "redis-cli", "FLUSHDB")]
    return [kubectl("rollout", "restart", "deployment/backend-api", "-n", ns)]


def _cosmetic(kubectl, key, ns):
    name = FAULTS[key]["object"].split("/", 1)[1]
    return [kubectl("annotate", "deployment/%s" % name, "-n", ns, "opsdrill.example/looked-at=yes", "--overwrite")]


SCRIPTS = {"real": _real, "symptom": _symptom, "cosmetic": _cosmetic}


# --------------------------------------------------------------------------------------
# this test's own reading of an object: the leaves that make it behave

IGNORED = ("metadata", "status", "spec.template.metadata.annotations", "spec.strategy", "spec.revisionHistoryLimit",
           "spec.progressDeadlineSeconds")


def leaves(value, prefix=""):
    """Dotted leaf paths of an object (list items by index), without IGNORED."""
    out = {}
    if prefix in IGNORED:
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(leaves(item, "%s.%s" % (prefix, key) if prefix else key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.update(leaves(item, "%s[%d]" % (prefix, index)))
    else:
        out[prefix] = value
    return out


def fault_still_there(before, faulted, now, cause):
    """(paths the fault changed, those of them under ``cause`` that still have the
    fault's value)."""
    a, b, c = leaves(before), leaves(faulted), leaves(now)
    changed = sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))
    return changed, [p for p in changed if p.startswith(cause) and c.get(p) == b.get(p)]


# --------------------------------------------------------------------------------------
# one run

class Run:
    def __init__(self, key, kind, namespace, lab, admin, trainee, output):
        self.key, self.kind, self.namespace = key, kind, namespace
        self.lab, self.admin, self.trainee = lab, admin, trainee
        self.ref = FAULTS[key]["object"]
        self.runner = drill_runner.DrillRunner(key, namespace, lab, output, response_window_s=FAULTS[key]["window_s"],
                                               extra_vars={"recovery_hold_s": HOLD_S}, log=say)
        self.runner.drill_id = "%s-%s-%s" % (namespace, kind, time.strftime("%H%M%S", time.gmtime()))
        self.runner.artifacts_dir = self.runner.artifacts_base / self.runner.drill_id
        self.commands = []
        self.after_fix = None
        self.result = None
        self.error = None
        self.own = {}

    def kubectl(self, *args):
        started = time.time()
        proc = self.trainee.run(*args, check=False, timeout=150)
        self.commands.append({"argv": list(args), "started": started, "ended": time.time(), "rc": proc.returncode,
                              "stderr": proc.stderr.strip()[-300:]})
        say("[%s] %s/%s: kubectl %s -> rc %d" % (self.namespace, self.key, self.kind, " ".join(args), proc.returncode))
        return proc.returncode

    def read(self):
        kind, name = self.ref.split("/", 1)
        return self.admin.json("get", kind.lower(), name, "-n", self.namespace)

    def events(self):
        return drill_runner._timeline(self.runner.artifacts_dir)  # pylint: disable=protected-access

    def wait_event(self, name, thread, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline and thread.is_alive():
            found = drill_runner._first(self.events(), name)  # pylint: disable=protected-access
            if found:
                return found
            time.sleep(0.5)
        return None

    def go(self):
        before = self.read()
        outcome = {}

        def drill():
            try:
                outcome["result"] = self.runner.run()
            except Exception as exc:  # reported by the test, never a hung thread
                outcome["error"] = repr(exc)

        thread = threading.Thread(target=drill, daemon=True, name="drill-%s-%s" % (self.namespace, self.kind))
        thread.start()
        try:
            injected = self.wait_event("fault_injected", thread, 300)
            assert injected, "no fault_injected"
            faulted = self.read()
            if self.kind == "symptom":
                # The team polls the pods before anything fires: no response, whatever follows.
                while not drill_runner._first(self.events(), "alert_firing") and thread.is_alive():  # pylint: disable=protected-access
                    self.trainee.run("get", "pods", "-n", self.namespace, check=False)
                    time.sleep(3)
            alert = self.wait_event("alert_firing", thread, self.runner.entry["alert_within_s"] + 120)
            assert alert, "no alert_firing"
            time.sleep(PAUSE_S)
            self.kubectl("get", "pods", "-n", self.namespace)
            rcs = SCRIPTS[self.kind](self.kubectl, self.key, self.namespace)
            self.own["fix_done_at"] = time.time()
            time.sleep(PAUSE_S)
            now = self.read()
            changed, in_place = fault_still_there(before, faulted, now, FAULTS[self.key]["cause"])
            self.own.update(commands_ok=all(rc == 0 for rc in rcs), changed=changed, in_place=in_place,
                            read_at=time.time())
            self.after_fix = now
        except AssertionError as exc:
            self.error = str(exc)
        finally:
            thread.join(timeout=FAULTS[self.key]["window_s"] + 900)
        if thread.is_alive():
            self.error = (self.error or "") + " the drill did not end"
        self.result = outcome.get("result")
        if outcome.get("error"):
            self.error = (self.error or "") + " harness error: " + outcome["error"]
        ended = drill_runner._first(self.events(), "response_window_ended")  # pylint: disable=protected-access
        if ended:
            # Prometheus' word on the service at the end of the window: the seed alert firing?
            at = ended["epoch"]
            self.own["alert_firing_at_window_end"] = self.runner._alert_first_firing(  # pylint: disable=protected-access
                self.runner.entry["alert"], at - 5, at) is not None
        self.record(before, faulted if "faulted" in locals() else None)
        return self

    def card(self):
        path = self.runner.artifacts_dir / "scorecard.json"
        return json.loads(path.read_text()) if path.exists() else None

    def record(self, before, faulted):
        target = os.environ.get("OPSDRILL_RECORD_FIXTURES")
        if not target or self.result is None:
            return
        events = self.events()
        started = drill_runner._first(events, "drill_started")  # pylint: disable=protected-access
        finished = drill_runner._first(events, "drill_finished")  # pylint: disable=protected-access
        if not (started and finished):
            return
        out = Path(target) / ("%s-%s" % (self.key.split("/")[-1], self.kind))
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copy(self.runner.artifacts_dir / "timeline.jsonl", out / "timeline.jsonl")
        # This drill's requests of the trainee and in its namespace, in the API server's words.
        with open(self.lab["audit_log"], encoding="utf-8", errors="replace") as log, \
                open(out / "audit.log", "w", encoding="utf-8") as excerpt:
            for line in log:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                at = drill_runner.timeutil.parse_ts(
                    event.get("requestReceivedTimestamp", "1970-01-01T00:00:00Z")).timestamp()
                user = (event.get("user") or {}).get("username")
                ns = (event.get("objectRef") or {}).get("namespace")
                # The trainees' requests (the scorer reads no others) in this drill's namespaces:
                # other runs' namespaces hold the same trainee's requests at the same time.
                groups = (event.get("user") or {}).get("groups") or []
                if started["epoch"] - 1 <= at <= finished["epoch"] + 1 and (
                        user == TRAINEE or "opsdrill:trainees" in groups) and (
                        ns in (None, self.namespace, "opsdrill-ctl-" + self.namespace)):
                    excerpt.write(line if line.endswith("\n") else line + "\n")
        (out / "catalog-entry.json").write_text(json.dumps(self.runner.entry, indent=1, sort_keys=True) + "\n")
        (out / "objects.json").write_text(json.dumps(
            {"ref": self.ref, "before": before, "faulted": faulted, "after_fix": self.after_fix, "own": self.own,
             "commands": [c["argv"] for c in self.commands]}, indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def trainee(lab):
    kubeconfigs = lab.get("trainee_kubeconfigs") or {}
    assert TRAINEE in kubeconfigs, "the lab has no kubeconfig of %s (lab.json trainee_kubeconfigs)" % TRAINEE
    return Kube(lab["kubectl"], kubeconfigs[TRAINEE])


@pytest.fixture(scope="module")
def fix_runs(request, lab, admin, trainee, drill_output):
    """The selected runs, side by side in the drill pool's namespaces (or new ones)."""
    selected = [(item.callspec.params["key"], item.callspec.params["kind"]) for item in request.session.items
                if hasattr(item, "callspec") and item.originalname == "test_fix_is_judged_from_the_cluster"]
    import conftest  # the drills' conftest: the pool, when test_faults ran before
    pool = conftest._POOL.get("pool")  # pylint: disable=protected-access
    created = []
    if pool is not None:
        pool.wait()
        namespaces = [n for n in pool.namespaces if pool.setup_rc.get(n, 0) == 0]
    else:
        conftest.release_guard_namespace(lab, admin)
        namespaces, fresh = drill_runner.namespaces_for(3, lab, say)
        created = namespaces if fresh else []
        rcs = {}
        threads = [threading.Thread(target=lambda n=n: rcs.__setitem__(n, drill_runner.setup_namespace(
            n, drill_output, say))) for n in namespaces]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        namespaces = [n for n in namespaces if rcs.get(n) == 0]
    assert namespaces, "no namespace to run the fix judgement drills in"
    todo = queue.Queue()
    # The slowest fault (its alert takes longest) first, its runs spread over the namespaces.
    for key, kind in selected:
        todo.put((key, kind))
    done = {}

    def worker(namespace):
        while True:
            try:
                key, kind = todo.get_nowait()
            except queue.Empty:
                return
            run = Run(key, kind, namespace, lab, admin, trainee, drill_output)
            try:
                done[(key, kind)] = run.go()
            except Exception as exc:  # reported per run
                run.error = "harness error: %r" % exc
                done[(key, kind)] = run

    started = time.time()
    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in namespaces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = []
    for (key, kind), run in sorted(done.items()):
        card = run.card() or {}
        fix = card.get("fix_assessment") or {}
        crits = {c["id"]: c for c in card.get("criteria") or []}
        recovered = drill_runner._first(run.events(), "steady_state_restored", by="team")  # pylint: disable=protected-access
        rows.append({
            "fault": key, "run": kind, "level": fix.get("level"),
            "problem_solving": (crits.get("technical.problem_solving") or {}).get("points"),
            "recovery": (crits.get("technical.service_recovery") or {}).get("points"),
            "percent": (card.get("totals") or {}).get("percent"), "result": (card.get("totals") or {}).get("result"),
            "fix_to_recovery_s": round(recovered["epoch"] - run.own["fix_done_at"], 1)
            if recovered and run.own.get("fix_done_at") else None,
            "recovery_recorded_after_fix_s": round(recovered["recorded_epoch"] - run.own["fix_done_at"], 1)
            if recovered and recovered.get("recorded_epoch") and run.own.get("fix_done_at") else None,
            "own_in_place": run.own.get("in_place"), "error": run.error})
    (drill_output / "fix-judgement.json").write_text(json.dumps(
        {"wall_s": round(time.time() - started, 1), "namespaces": namespaces, "runs": rows}, indent=1))
    say("fix judgement: %d runs in %.0f s" % (len(done), time.time() - started))
    yield done
    for namespace in created:
        if os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
            drill_runner.delete_namespace(lab, namespace)


# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,kind", RUNS, ids=["%s-%s" % (k.split("/")[-1], r) for k, r in RUNS])
def test_fix_is_judged_from_the_cluster(fix_runs, key, kind):
    run = fix_runs[(key, kind)]
    result = run.result
    context = "%s/%s in %s (drill %s, log %s)" % (
        key, kind, run.namespace, run.runner.drill_id, getattr(result, "log", "?"))
    assert run.error is None, "%s: %s" % (context, run.error)
    # Never leave a cluster broken, whatever the trainee did.
    assert result.rc == 0, "%s: ansible-playbook failed: %s" % (context, result.failure)
    assert result.verify == "verify_passed" and result.differences == [] and result.leftovers == [], context
    assert run.own["commands_ok"], "%s: a trainee command failed: %s" % (context, run.commands)
    # The test's own diff: the fault changed the object, and only the real fix removed it.
    assert run.own["changed"], "%s: the test saw no change of %s by the fault" % (context, run.ref)
    fault_gone = not run.own["in_place"]
    assert fault_gone == (kind == "real"), "%s: fault paths still in place: %s" % (context, run.own["in_place"])

    card = run.card()
    assert card is not None, "%s: no scorecard" % context
    fix = card["fix_assessment"]
    crits = {c["id"]: c for c in card["criteria"]}
    solving, recovery = crits["technical.problem_solving"], crits["technical.service_recovery"]
    events = run.events()
    restored = drill_runner._first(events, "steady_state_restored", by="team")  # pylint: disable=protected-access
    assert fix["judged_by"] == "cluster", fix
    if kind == "real":
        assert fix["cause_fixed"] is True and fix["level"] == "cause_fixed_recovered", (context, fix)
        assert solving["points"] == solving["points_max"], (context, solving)
        assert recovery["points"] == recovery["points_max"], (context, recovery)
        # Prometheus agrees: the seed alert no longer fired when the window ended.
        assert run.own["alert_firing_at_window_end"] is False, context
        # The recovery held, and is recorded at the time it began, after the fix.
        assert restored is not None and float(restored["data"]["held_s"]) >= HOLD_S, (context, restored)
        assert restored["epoch"] >= run.commands[0]["started"], (context, restored)
        # Who: the audit log's requests of the trainee that changed the object.
        assert fix["cause_fixes"] and all(f["actor"] == TRAINEE for f in fix["cause_fixes"]), (context, fix)
    else:
        assert fix["cause_fixed"] is False and fix["cause_fixes"] == [], (context, fix)
        assert run.own["alert_firing_at_window_end"] is True, "%s: the service was not broken at the end" % context
        assert restored is None, (context, restored)
        assert recovery["points"] == 0, (context, recovery)
        if kind == "symptom":
            assert fix["level"] in ("symptom_only", "symptom_only_recovered"), (context, fix)
            assert 0 < solving["points"] < solving["points_max"], (context, solving)
            # Polling and a restart, with no desk and no trainer marks, cannot pass.
            assert card["totals"]["result"] != "pass", (context, card["totals"])
        else:
            assert fix["level"] == "no_fix" and fix["symptom_fixes"] == [], (context, fix)
            assert solving["points"] == 0, (context, solving)
            assert [c["action"] for c in fix["unlisted_changes"]], (context, fix)
