"""Run real drills on the lab and observe them from the outside (kubectl, Prometheus).

Shared by tests/integration/drills (pytest) and scripts/bench_drills.py. A drill runs as
``ansible-playbook drill-<scenario>.yml`` in a namespace of its own; while it runs, a
monitor polls the cluster with kubectl (not through the drill's modules) for the fault's
symptom (the catalog's detect spec, evaluated on kubectl's view) and for the seed alert
in Prometheus. Afterwards every touched object is compared with the snapshot the drill
took, and the namespace's steady state is checked.

Several namespaces run faults side by side (``run_pool``): CI has 90 minutes for
everything, the 24 faults take 1.5 to 6 minutes each.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
LAB_DIR = Path(os.environ.get("OPSDRILL_LAB_DIR", "/var/lib/opsdrill-lab"))
VENV_BIN = REPO / ".venv" / "bin"
# A symptom counts when the monitor sees it again this many seconds later.
CONFIRM_S = 10


def _collection_path():
    """Make ``ansible_collections.opsdrill.drills`` importable (the repo is the collection)."""
    # One link per checkout: a link left by another checkout (a CI clone next to a working
    # tree) would make the tests import that checkout's code.
    digest = hashlib.sha256(str(REPO.resolve()).encode("utf-8")).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / "opsdrill-drill-tests" / digest / "collections"
    link = base / "ansible_collections" / "opsdrill" / "drills"
    if not (link.is_symlink() and link.resolve() == REPO.resolve()):
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name("drills.%d" % os.getpid())
        tmp.symlink_to(REPO)
        os.replace(tmp, link)
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))
    module = sys.modules.get("ansible_collections")
    if module is not None and hasattr(module, "__path__"):
        extra = str(base / "ansible_collections")
        if extra not in list(module.__path__):
            module.__path__.append(extra)


_collection_path()
from ansible_collections.opsdrill.drills.plugins.module_utils import catalog  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils import detect  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.k8s_rest import ApiError  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import timeutil  # noqa: E402


def fault_keys():
    """Every catalog fault, ``scenario/variant/name``."""
    return catalog.load().keys()


def lab_info():
    path = LAB_DIR / "lab.json"
    return json.loads(path.read_text()) if path.exists() else None


def require_lab():
    """lab.json of the built-in lab; for the scripts, exit 2 naming the file when there is none."""
    lab = lab_info()
    if not lab:
        print("no lab: %s/lab.json missing (make lab)" % LAB_DIR, file=sys.stderr)
        raise SystemExit(2)
    return lab


# --------------------------------------------------------------------------------------
# kubectl as the client of detect.ClusterView

class KubectlClient(k8s_rest.Client):
    """The few k8s_rest.Client calls ClusterView makes, answered by kubectl (what is not
    overridden here goes through ``request``)."""

    def __init__(self, kubectl, kubeconfig):  # pylint: disable=super-init-not-called
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig

    def _run(self, *args, timeout=30):
        return subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, *args], capture_output=True,
                              text=True, timeout=timeout, check=False)

    def get_or_none(self, kind, name, namespace=None):
        proc = self._run("get", kind, name, "-n", namespace, "-o", "json")
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise ApiError(0, "kubectl", proc.stderr.strip())
        return json.loads(proc.stdout)

    def list(self, kind, namespace=None, label_selector=None, field_selector=None):
        args = ["get", {"EndpointSlice": "endpointslices.discovery.k8s.io", "Event": "events"}.get(kind, kind),
                "-n", namespace, "-o", "json"]
        if label_selector:
            args += ["-l", label_selector]
        if field_selector:
            args += ["--field-selector", field_selector]
        proc = self._run(*args)
        if proc.returncode != 0:
            raise ApiError(0, "kubectl", proc.stderr.strip())
        return json.loads(proc.stdout).get("items") or []

    def request(self, method, path, body=None, query=None, raw=False, **_kw):
        assert method == "GET"
        if query:
            path += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        proc = self._run("get", "--raw", path)
        if proc.returncode != 0:
            raise ApiError(404 if "NotFound" in proc.stderr else 0, "kubectl", proc.stderr.strip())
        return proc.stdout if raw else json.loads(proc.stdout or "{}")


# --------------------------------------------------------------------------------------
# one drill

@dataclass
class DrillResult:
    key: str
    namespace: str
    drill_id: str
    rc: int = -1
    wall_s: float = 0.0
    inject_latency_s: float | None = None
    # set_stats of the run (what AWX shows as the job's artifacts)
    stats: dict = field(default_factory=dict)
    symptom_s: float | None = None            # seen by this monitor (kubectl)
    symptom_engine_s: float | None = None     # symptom_observed in the timeline
    symptom_within_s: int | None = None
    alert_s: float | None = None              # firing in Prometheus, seen by this monitor
    alert_engine_s: float | None = None
    alert_within_s: int | None = None
    alert_for_s: float | None = None          # the rule's `for:`, from Prometheus' /api/v1/rules
    rollback_s: float | None = None           # rollback_started -> rollback_finished
    rollback_to_steady_s: float | None = None  # rollback_started -> steady state (timeline)
    verify: str | None = None
    differences: list = field(default_factory=list)
    leftovers: list = field(default_factory=list)
    steady_problems: list = field(default_factory=list)
    failure: str | None = None
    deploy_repo: list = field(default_factory=list)  # problems with the release commits
    events: list = field(default_factory=list)
    log: str = ""
    artifacts_dir: str = ""
    audit_log: str = ""

    def ok(self):
        return (self.rc == 0 and self.symptom_s is not None and self.alert_s is not None
                and self.verify == "verify_passed" and not self.differences and not self.leftovers
                and not self.steady_problems and not self.deploy_repo)

    def row(self):
        data = asdict(self)
        data.pop("events")
        return data


def scorecard(result):
    """The drill's scorecard.json."""
    return json.loads((Path(result.artifacts_dir) / "scorecard.json").read_text())


def trainee_requests(result, group="opsdrill:trainees"):
    """Requests of the lab's trainees in the drill's namespace between drill_started and
    drill_finished, read from the API server's audit log here (not by the scoring code)."""
    events = {e["event"]: e["epoch"] for e in result.events}
    since, until = events.get("drill_started"), events.get("drill_finished")
    if not (result.audit_log and since and until):
        raise AssertionError("no audit log or drill window for %s" % result.drill_id)
    return [event for _at, event in audit_entries(result.audit_log, since, until, (group, result.namespace))
            if group in ((event.get("user") or {}).get("groups") or [])
            and (event.get("objectRef") or {}).get("namespace") == result.namespace]


def audit_entries(audit_log, since, until=None, contains=(), stage=None):
    """``(epoch, entry)`` of the API server's audit log received in [since, until], from
    lines holding every text of ``contains`` (a cheap filter before parsing), at ``stage``
    when given. Unparsable lines are skipped."""
    with open(audit_log, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not all(text in line for text in contains):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if stage and entry.get("stage") != stage:
                continue
            at = epoch(entry["requestReceivedTimestamp"])
            if since <= at and (until is None or at <= until):
                yield at, entry


def _timeline(artifacts_dir):
    path = Path(artifacts_dir) / "timeline.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _first(events, name, by=None):
    for event in events:
        if event["event"] == name and (by is None or (event.get("data") or {}).get("by") == by):
            return event
    return None


class PlaybookRun:
    """One ansible-playbook run through ansible-runner's Python API, as AWX runs a job:
    extra variables in the runner's ``env/extravars``, its events (task starts with their
    times, ``set_stats`` in the stats event), its stdout and its exit status."""

    def __init__(self, playbook, extravars, private_dir, log_path, envvars=None, inventory=None):
        import ansible_runner  # the harness's dependency, not the collection's
        self.log_path = Path(log_path)
        self.playbook, self.extravars = playbook, dict(extravars)
        self.events = []
        env = {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
               "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])}
        env.update(envvars or {})
        private_dir = Path(private_dir)
        private_dir.mkdir(parents=True, exist_ok=True)
        self.thread, self.runner = ansible_runner.run_async(
            private_data_dir=str(private_dir), project_dir=str(REPO), playbook=playbook,
            extravars=extravars, envvars=env, inventory=inventory, quiet=True,
            event_handler=self._event, settings={"suppress_env_files": True})

    def _event(self, event):
        self.events.append(event)
        return True

    def running(self):
        return self.thread.is_alive()

    def finish(self):
        """Wait for the end; write the run's stdout to the log; the exit status."""
        self.thread.join()
        stdout = self.runner.stdout
        self.log_path.write_text(stdout.read() if stdout else "", encoding="utf-8")
        return self.runner.rc

    def task_starts(self, suffix):
        """Epoch seconds at which tasks whose name ends with ``suffix`` started."""
        return [epoch(e["created"]) for e in self.events
                if e.get("event") == "playbook_on_task_start"
                and (e.get("event_data") or {}).get("task", "").endswith(suffix)]

    @property
    def stats(self):
        """What ``set_stats`` published (AWX shows it as the job's artifacts)."""
        for event in self.events:
            if event.get("event") == "playbook_on_stats":
                return (event.get("event_data") or {}).get("artifact_data") or {}
        return {}

    def stdout_until(self, until):
        """The job's output as AWX shows it while it runs: every event created before ``until``."""
        return "\n".join(e.get("stdout") or "" for e in self.events if epoch(e["created"]) < until)

    def event_data_until(self, until):
        """Every event's data created before ``until`` (AWX keeps it for job viewers), as JSON."""
        return "\n".join(json.dumps(e.get("event_data") or {}) for e in self.events
                         if epoch(e["created"]) < until)


def epoch(timestamp):
    """An ISO 8601 time (a runner event's ``created``, an audit entry's, an object's) as
    epoch seconds."""
    return timeutil.parse_ts(timestamp).timestamp()


class DrillRunner:
    """Runs one fault in one namespace and watches it."""

    def __init__(self, key, namespace, lab, output_dir, response_window_s=0, poll_s=2.0,
                 extra_vars=None, log=print, catalog_paths=None, envvars=None, inventory=None, generic=False,
                 seed=None):
        self.key = key
        self.scenario, self.variant, self.fault = key.split("/")
        self.namespace = namespace
        self.lab = lab
        self.kubeconfig = os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"])
        self.client = KubectlClient(lab["kubectl"], self.kubeconfig)
        # A team's own catalog files (its scenarios run through the generic drill.yml).
        self.catalog_paths = [str(p) for p in catalog_paths or []]
        # "scenario/variant/" leaves the pick to the drill's seed: the fault is read from the
        # drill's own timeline once it starts (as the trainer would, from the artifacts).
        self.entry = self._lookup() if self.fault else None
        self.output_dir = Path(output_dir)
        self.response_window_s = response_window_s
        self.poll_s = poll_s
        self.extra_vars = extra_vars or {}
        # What a credential or a job template would add: environment, ansible-playbook options.
        self.envvars = envvars or {}
        self.inventory = inventory
        self.seed = seed
        # The generic drill.yml with -e scenario (what AWX's drill job template runs).
        self.generic = generic or bool(self.catalog_paths)
        self.playbook_run = None
        self.say = log
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.drill_id = "%s-%s-%s" % (namespace, (self.fault or "seeded").replace("_", "-"), stamp)
        self.artifacts_base = self.output_dir / "artifacts"
        self.artifacts_dir = self.artifacts_base / self.drill_id
        self.deploy_repo_base = self.output_dir / "deploy-repo"

    def _lookup(self):
        return catalog.lookup(self.scenario, self.variant, self.fault, paths=self.catalog_paths)

    def _learn_fault(self, events, result):
        """The seeded drill's fault, from its ``drill_started`` event."""
        started = _first(events, "drill_started")
        if self.entry is None and started and started.get("fault"):
            self.fault = started["fault"]
            self.key = "%s/%s/%s" % (self.scenario, self.variant, self.fault)
            self.entry = self._lookup()
            result.key = self.key
            result.symptom_within_s = self.entry["symptom"]["within_s"]
            result.alert_within_s = self.entry["alert_within_s"]

    # -- what the monitor sees ----------------------------------------------------------
    def _view(self, since=None, baseline=None):
        return detect.ClusterView(self.client, self.namespace, "prometheus:9090", since, baseline)

    def _alert_firing(self, alert):
        return self._view().alert_state(alert) == "firing"

    def _alert_for_s(self, alert):
        """The alert rule's `for:` in seconds, as Prometheus loaded it (None: not found)."""
        status, payload = self._view().prometheus_get("/api/v1/rules")
        if status != 200 or not payload:
            return None
        for group in payload.get("data", {}).get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("type") == "alerting" and rule.get("name") == alert:
                    return float(rule.get("duration", 0))
        return None

    def _alert_first_firing(self, alert, since, until):
        """When Prometheus' own ALERTS series first shows ``alert`` firing in [since, until]
        (epoch s), or None. The record outlives the alert: a drill may fire and roll back
        between two looks of this monitor (each look is several kubectl calls)."""
        status, payload = self._view().prometheus_get("/api/v1/query_range", query={
            "query": 'ALERTS{alertname="%s",alertstate="firing"}' % alert,
            "start": "%.3f" % since, "end": "%.3f" % until, "step": "1"})
        if status != 200 or not payload:
            return None
        times = [float(at) for series in (payload.get("data") or {}).get("result") or []
                 for at, _value in series.get("values") or []]
        return min(times) if times else None

    def _symptom(self, since, baseline):
        met, _detail = detect.evaluate(self.entry["symptom"]["detect"], self._view(since, baseline))
        return met

    def _restart_baseline(self):
        try:
            return detect.restart_counts(self.client.list("Pod", self.namespace))
        except ApiError:
            return {}

    # -- the run ------------------------------------------------------------------------
    def playbook(self):
        """The playbook and its extra variables (typed, as AWX passes a survey's answers)."""
        extravars = {"drill_namespace": self.namespace, "variant": self.variant, "fault": self.fault,
                     "response_window_s": self.response_window_s,
                     # No team writes a post-mortem here (test_incident_desk.py does, and sets it).
                     "postmortem_window_s": 0, "drill_id": self.drill_id,
                     "drill_artifacts_base": str(self.artifacts_base),
                     "drill_engine_deploy_repo_base": str(self.deploy_repo_base)}
        if self.seed is not None:
            extravars["drill_seed"] = self.seed
        if self.generic:
            playbook = "drill.yml"
            extravars["scenario"] = self.scenario
            if self.catalog_paths:
                extravars["opsdrill_catalog_paths"] = self.catalog_paths
        else:
            playbook = catalog.playbook_of(self.scenario)
        extravars.update(self.extra_vars)
        return playbook, extravars

    def run(self):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        result = DrillResult(self.key, self.namespace, self.drill_id)
        if self.entry is not None:
            result.symptom_within_s = self.entry["symptom"]["within_s"]
            result.alert_within_s = self.entry["alert_within_s"]
        log_path = self.output_dir / ("%s.log" % self.drill_id)
        result.log = str(log_path)
        result.artifacts_dir = str(self.artifacts_dir)
        result.audit_log = self.lab.get("audit_log") or ""
        envvars = dict(self.envvars)
        if os.environ.get("OPSDRILL_KUBECONFIG"):
            envvars["K8S_AUTH_KUBECONFIG"] = os.environ["OPSDRILL_KUBECONFIG"]
        started = time.time()
        self.say("[%s] %s: starting drill %s" % (self.namespace, self.key, self.drill_id))
        playbook, extravars = self.playbook()
        run = PlaybookRun(playbook, extravars, self.output_dir / "runner" / self.drill_id, log_path,
                          envvars=envvars, inventory=self.inventory)
        baseline, injected, watching, first_seen = None, None, True, None
        while run.running():
            events = _timeline(self.artifacts_dir)
            names = [e["event"] for e in events]
            self._learn_fault(events, result)
            if baseline is None and "snapshot_taken" in names:
                baseline = self._restart_baseline()
            if injected is None and "fault_injected" in names:
                injected = _first(events, "fault_injected")["epoch"]
            if "rollback_finished" in names:
                watching = False  # the fault is gone from here on
            if injected is not None and watching:
                now = time.time()
                try:
                    if result.symptom_s is None:
                        # Seen twice, CONFIRM_S apart: a rolling restart's gap is no symptom.
                        if not self._symptom(injected, baseline or {}):
                            first_seen = None
                        elif first_seen is None:
                            first_seen = now
                        elif now - first_seen >= CONFIRM_S:
                            result.symptom_s = round(first_seen - injected, 1)
                            self.say("[%s] %s: symptom seen after %.1f s (still there %.0f s later)"
                                     % (self.namespace, self.key, result.symptom_s, now - first_seen))
                    if result.alert_s is None and self._alert_firing(self.entry["alert"]):
                        result.alert_s = round(now - injected, 1)
                        result.alert_for_s = self._alert_for_s(self.entry["alert"])
                        self.say("[%s] %s: %s firing after %.1f s"
                                 % (self.namespace, self.key, self.entry["alert"], result.alert_s))
                except (ApiError, subprocess.TimeoutExpired, ValueError) as exc:
                    self.say("[%s] %s: monitor: %s" % (self.namespace, self.key, exc))
            time.sleep(self.poll_s)
        result.rc = run.finish()
        self.playbook_run = run
        if injected is not None and result.alert_s is None:
            self._alert_from_history(result, injected)
        result.wall_s = round(time.time() - started, 1)
        self._collect(result, run)
        self._check_cluster(result)
        self.say("[%s] %s: rc=%d %s in %.0f s (symptom %s s, alert %s s, rollback->steady %s s)%s"
                 % (self.namespace, self.key, result.rc, result.verify, result.wall_s, result.symptom_s,
                    result.alert_s, result.rollback_to_steady_s,
                    (" FAILURE: " + result.failure) if result.failure else ""))
        return result

    def _alert_from_history(self, result, injected):
        events = _timeline(self.artifacts_dir)
        until = (_first(events, "rollback_finished") or {}).get("epoch") or time.time()
        try:
            first = self._alert_first_firing(self.entry["alert"], injected, until + 5)
            if first is not None:
                result.alert_s = round(first - injected, 1)
                result.alert_for_s = self._alert_for_s(self.entry["alert"])
                self.say("[%s] %s: %s firing after %.1f s (Prometheus' ALERTS series; it had cleared before this "
                         "monitor looked)" % (self.namespace, self.key, self.entry["alert"], result.alert_s))
        except (ApiError, subprocess.TimeoutExpired, ValueError) as exc:
            self.say("[%s] %s: monitor: %s" % (self.namespace, self.key, exc))

    def _collect(self, result, run):
        events = _timeline(self.artifacts_dir)
        result.events = events
        injected = _first(events, "fault_injected")
        starts = run.task_starts("Inject the fault")
        if injected and starts:
            result.inject_latency_s = round(injected["epoch"] - starts[-1], 3)
        result.stats = run.stats
        for name, attr in (("symptom_observed", "symptom_engine_s"), ("alert_firing", "alert_engine_s")):
            event = _first(events, name)
            if event and injected:
                setattr(result, attr, round(event["epoch"] - injected["epoch"], 1))
        started = _first(events, "rollback_started")
        finished = _first(events, "rollback_finished")
        steady = _first(events, "steady_state_restored", by="rollback")
        if started and finished:
            result.rollback_s = round(finished["epoch"] - started["epoch"], 1)
        if started and steady:
            result.rollback_to_steady_s = round(steady["epoch"] - started["epoch"], 1)
        verdict = [e["event"] for e in events if e["event"] in ("verify_passed", "verify_failed")]
        result.verify = verdict[-1] if verdict else None
        failed = _first(events, "drill_failed")
        if failed:
            result.failure = "%s: %s" % (failed["data"].get("phase"), failed["data"].get("error"))

    def _check_cluster(self, result):
        """From the cluster itself: every touched object equals its snapshot, nothing the
        fault created or the drill armed is left, and the steady state is back."""
        state_file = self.artifacts_dir / "drill-state.json"
        if state_file.exists():
            local = json.loads(state_file.read_text())
            objects = local["snapshot"]
            live = {snapshot.ref_of(o): self.client.get_or_none(o["kind"], o["metadata"]["name"], self.namespace)
                    for o in objects}
            result.differences = snapshot.diff(objects, scrubbed_like(local, live))
            for ref in local["state"].get("created") or []:
                kind, name = ref.split("/", 1)
                obj = self.client.get_or_none(kind, name, self.namespace)
                if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                    result.leftovers.append("%s (created by the fault)" % ref)
        control = snapshot.control_namespace(self.namespace)
        for kind, name, where in (("ConfigMap", "opsdrill-drill-state", control),
                                  ("Secret", "opsdrill-drill-state", control),
                                  ("Secret", "opsdrill-drill-key", control),
                                  ("Lease", "opsdrill-drill", control), ("Lease", "opsdrill-restore-lock", control),
                                  ("Job", "opsdrill-deadman", control), ("ConfigMap", "opsdrill-deadman-code", control),
                                  ("ServiceAccount", "opsdrill-deadman", control),
                                  ("Role", "opsdrill-deadman", self.namespace),
                                  ("RoleBinding", "opsdrill-deadman", self.namespace),
                                  # nothing of the drill may be left in the team's namespace
                                  ("ConfigMap", "opsdrill-drill-state", self.namespace),
                                  ("Lease", "opsdrill-drill", self.namespace)):
            obj = self.client.get_or_none(kind, name, where)
            if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                result.leftovers.append("%s/%s/%s" % (where, kind, name))
        result.deploy_repo = self._check_deploy_repo()
        deadline = time.time() + 90
        while True:
            result.steady_problems = steady_problems(self.client, self.namespace, self.catalog_paths)
            if not result.steady_problems or time.time() > deadline:
                break
            time.sleep(3)

    def _check_deploy_repo(self):
        """A release is a commit in the namespace's deploy repository (what the seed's
        ``git log -p services/api-gateway`` finds), reverted by the rollback."""
        problems = []
        repo = self.deploy_repo_base / self.namespace
        for step in (self.entry or {}).get("steps", []):
            message = (step.get("params") or {}).get("commit_message")
            if step["handler"] != "release" or not message:
                continue
            name = step["object"].split("/", 1)[1]
            log = subprocess.run(["git", "-C", str(repo), "log", "-p", "--format=%s", "services/%s" % name],
                                 capture_output=True, text=True, check=False).stdout
            if message not in log:
                problems.append("no commit %r in git log -p services/%s of %s" % (message, name, repo))
            head = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%s"],
                                  capture_output=True, text=True, check=False).stdout.strip()
            if head != 'Revert "%s"' % message:
                problems.append("the rollback did not revert the release in %s (HEAD: %r)" % (repo, head))
        return problems


def scheduled_drill(admin, namespace, key, drill_vars, output_dir, say=print):
    """Schedule drills in ``namespace`` (set up, with the runner account) every minute with
    schedule.yml, wait for the first to fire and end, suspend the schedule: what was seen -
    the Job (its creation is the firing), its status and pods' log, the fault's object
    before and after."""
    control = snapshot.control_namespace(namespace)
    entry = catalog.lookup(*key.split("/"))
    kind, name = entry["steps"][0]["object"].split("/", 1)
    before = admin.json("get", kind, name, "-n", namespace)
    run = PlaybookRun("schedule.yml", {
        "drill_namespace": namespace, "drill_schedule_cron": "* * * * *",
        "drill_schedule_drill_vars": drill_vars},
        output_dir / "runner" / ("schedule-" + namespace), output_dir / ("schedule-%s.log" % namespace))
    assert run.finish() == 0, open(output_dir / ("schedule-%s.log" % namespace)).read()[-3000:]
    scheduled_at = time.time() - 1  # the API server's seconds are whole
    say("[%s] CronJob created; waiting for it to fire (at the next minute)" % namespace)
    job = admin.wait_for("the CronJob's first Job", lambda: next((
        j for j in admin.json("get", "jobs", "-n", control, "-l", "app.kubernetes.io/component=drill-schedule")["items"]
        if epoch(j["metadata"]["creationTimestamp"]) >= scheduled_at), None),
        timeout=150, interval=1)
    # One drill is enough here: no second firing while this one runs or after.
    admin.run("patch", "cronjob", "opsdrill-drill", "-n", control, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    job_name = job["metadata"]["name"]
    say("[%s] fired: Job %s" % (namespace, job_name))

    def finished():
        status = admin.json("get", "job", job_name, "-n", control).get("status") or {}
        return status if status.get("succeeded") or status.get("failed") else None

    done = admin.wait_for("Job %s to finish" % job_name, finished, timeout=420, interval=3)
    log = admin.run("logs", "job/%s" % job_name, "-n", control, "--all-containers=true", check=False).stdout
    (output_dir / ("scheduled-drill-%s.log" % namespace)).write_text(log)
    return {"job": job, "status": done, "log": log, "entry": entry, "before": before,
            "after": admin.json("get", kind, name, "-n", namespace), "control": control}


def audited_changes(audit_log, namespace, name, since):
    """(epoch, user) of every update or patch of object ``name`` in ``namespace`` the API
    server recorded from ``since`` on, oldest first."""
    return sorted((at, entry["user"]["username"])
                  for at, entry in audit_entries(audit_log, since, contains=(name,), stage="ResponseComplete")
                  if (entry.get("objectRef") or {}).get("namespace") == namespace
                  and (entry.get("objectRef") or {}).get("name") == name and entry["verb"] in ("update", "patch"))


def scrubbed_like(local, live):
    """A verified drill's local copy keeps Secret values as digests: compare live Secrets so."""
    if not local.get("secrets_scrubbed"):
        return live
    return {ref: (snapshot.redact_secrets([obj])[0] if obj is not None else None) for ref, obj in live.items()}


def steady_problems(client, namespace, catalog_paths=None):
    """Deployments not available or seed alerts firing, seen by kubectl and Prometheus."""
    problems = []
    for dep in client.list("Deployment", namespace, label_selector="app.kubernetes.io/part-of=opsdrill-seo-tool"):
        spec, status = dep.get("spec") or {}, dep.get("status") or {}
        wanted = spec.get("replicas", 1)
        if (status.get("availableReplicas") or 0) < wanted or (status.get("updatedReplicas") or 0) < wanted:
            problems.append("Deployment/%s: %s/%s available" % (dep["metadata"]["name"], status.get("availableReplicas"), wanted))
    view = detect.ClusterView(client, namespace, "prometheus:9090")
    for alert in catalog.load(catalog_paths or None).alerts():
        state = view.alert_state(alert)
        if state == "firing":
            problems.append("alert %s firing" % alert)
    return problems


# --------------------------------------------------------------------------------------
# namespaces and the pool

def setup_namespace(namespace, output_dir, log=print, extra_vars=None):
    """Deploy the stack into ``namespace`` (setup.yml; idempotent; ``extra_vars``: more -e,
    a value that is not a string as JSON)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(output_dir / ("setup-%s.log" % namespace), "w") as out:
        extra = [arg for name, value in (extra_vars or {}).items()
                 for arg in ("-e", "%s=%s" % (name, value) if isinstance(value, str) else json.dumps({name: value}))]
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "setup.yml", "-e", "drill_namespace=%s" % namespace, *extra],
                              cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT,
                              env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")), check=False)
    log("[%s] setup.yml rc=%d in %.0f s" % (namespace, proc.returncode, time.time() - started))
    return proc.returncode


def fresh_namespace(admin, namespace, output_dir, log=print, extra_vars=None):
    """A namespace of a test's own, opted in like the harness's, with the stack set up
    (an earlier run's namespace still terminating is waited for first)."""
    admin.wait_for("namespace %s from an earlier run to go" % namespace, lambda: "Terminating" not in admin.run(
        "get", "namespace", namespace, "-o", "jsonpath={.status.phase}", check=False).stdout, timeout=300, interval=3)
    admin.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": namespace, "labels": {"opsdrill.io/drill-target": "true"}}}))
    assert setup_namespace(namespace, output_dir, log, extra_vars) == 0, "setup.yml failed for %s" % namespace
    return namespace


def delete_namespace(lab, namespace):
    """Delete a drill namespace and its control namespace."""
    kubeconfig = os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"])
    subprocess.run([lab["kubectl"], "--kubeconfig", kubeconfig, "delete", "namespace", namespace,
                    snapshot.control_namespace(namespace), "--wait=false", "--ignore-not-found"],
                   capture_output=True, check=False)


def interleaved(keys):
    """``keys`` reordered so that neighbours come from different variants: the faults of
    one variant load the node alike (every resources fault at once starves the 2-core
    lab), so side by side namespaces should run different kinds of fault."""
    groups = {}
    for key in keys:
        groups.setdefault(key.rsplit("/", 1)[0], []).append(key)
    lanes = sorted(groups.values(), key=len, reverse=True)
    out = []
    for depth in range(max((len(lane) for lane in lanes), default=0)):
        out.extend(lane[depth] for lane in lanes if depth < len(lane))
    return out


class Pool:
    """Runs faults in several namespaces side by side, one fault per namespace at a time.

    ``result(key)`` blocks until that fault's drill has run."""

    def __init__(self, keys, namespaces, lab, output_dir, response_window_s=0, setup=True, log=print):
        self.keys = list(keys)
        self.namespaces = list(namespaces)
        self.lab = lab
        self.output_dir = Path(output_dir)
        self.response_window_s = response_window_s
        self.setup = setup
        self.say = log
        self.results = {}
        self.done = {key: threading.Event() for key in self.keys}
        self.setup_rc = {}
        self._queue = queue.Queue()
        for key in interleaved(self.keys):
            self._queue.put(key)
        self._threads = []

    def start(self):
        for namespace in self.namespaces:
            thread = threading.Thread(target=self._worker, args=(namespace,), daemon=True, name="drills-" + namespace)
            thread.start()
            self._threads.append(thread)
        threading.Thread(target=self.wait, daemon=True, name="drills-finisher").start()
        return self

    def _worker(self, namespace):
        if self.setup:
            self.setup_rc[namespace] = setup_namespace(namespace, self.output_dir, self.say)
            if self.setup_rc[namespace] != 0:
                self.say("[%s] setup failed: this namespace runs no drill" % namespace)
                return
        while True:
            try:
                key = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                runner = DrillRunner(key, namespace, self.lab, self.output_dir, self.response_window_s, log=self.say)
                self.results[key] = runner.run()
            except Exception as exc:  # report, never hang the waiting test
                self.results[key] = DrillResult(key, namespace, "", failure="harness error: %r" % exc)
            finally:
                self.done[key].set()
                with open(self.output_dir / "results.jsonl", "a") as out:
                    out.write(json.dumps(self.results[key].row()) + "\n")

    def result(self, key, timeout=None):
        if not self.done[key].wait(timeout):
            return None
        return self.results.get(key)

    def wait(self):
        for thread in self._threads:
            thread.join()
        for key in self.keys:  # namespaces whose setup failed left keys behind
            if key not in self.results:
                self.results[key] = DrillResult(key, "", "", failure="no namespace could run it (setup failed)")
                self.done[key].set()


# CPU one more namespace needs: the stack and its monitoring request ~420m, and a fault's
# rolling update, the dead-man's Job and a flush pod need room on top (measured on the lab).
NAMESPACE_CPU_M = 550


def _millicores(value):
    text = str(value or "0")
    return int(float(text[:-1])) if text.endswith("m") else int(float(text) * 1000)


def free_cpu_m(lab):
    """Allocatable CPU of the nodes minus what running and pending pods request (millicores)."""
    client = KubectlClient(lab["kubectl"], os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"]))
    proc = client._run("get", "nodes", "-o", "json")
    allocatable = sum(_millicores(n["status"]["allocatable"].get("cpu")) for n in json.loads(proc.stdout)["items"])
    proc = client._run("get", "pods", "-A", "-o", "json")
    requested = 0
    for pod in json.loads(proc.stdout)["items"]:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for container in pod["spec"].get("containers") or []:
            requested += _millicores(((container.get("resources") or {}).get("requests") or {}).get("cpu"))
    return allocatable - requested


def namespaces_for(parallel, lab=None, log=print):
    """Namespaces to use: $OPSDRILL_DRILL_NAMESPACES (comma list, kept) or opsdrill-drill-<n>,
    at most as many as the cluster's free CPU holds (a fault whose new pods stay Pending
    for lack of CPU shows no symptom)."""
    given = [n.strip() for n in os.environ.get("OPSDRILL_DRILL_NAMESPACES", "").split(",") if n.strip()]
    if given:
        return given, False
    wanted = max(1, parallel)
    if lab is not None:
        try:
            fits = max(1, free_cpu_m(lab) // NAMESPACE_CPU_M)
        except (OSError, ValueError, KeyError, subprocess.SubprocessError):
            fits = wanted
        if fits < wanted:
            log("only %d namespace(s) fit in the cluster's free CPU (%dm each): running %d side by side, not %d"
                % (fits, NAMESPACE_CPU_M, fits, wanted))
            wanted = fits
    return ["opsdrill-drill-%d" % (i + 1) for i in range(wanted)], True


def markdown_table(results):
    head = ("| fault | namespace | rc | inject latency s | symptom s (within) | alert s (within) | "
            "rollback s | rollback->steady s | wall s | verify | notes |")
    lines = [head, "|" + "---|" * 11]
    for r in results:
        notes = "; ".join(([r.failure] if r.failure else []) + r.differences[:3] + r.leftovers + r.steady_problems)
        lines.append("| %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s | %s | %s | %s |" % (
            r.key, r.namespace, r.rc, r.inject_latency_s, r.symptom_s, r.symptom_within_s, r.alert_s,
            r.alert_within_s, r.rollback_s, r.rollback_to_steady_s, r.wall_s, r.verify or "-",
            notes.replace("|", "/")[:300]))
    return "\n".join(lines) + "\n"


def which_kubectl(lab):
    return lab.get("kubectl") or shutil.which("kubectl")
