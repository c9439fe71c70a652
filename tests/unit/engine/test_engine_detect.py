"""Symptom detection: every detect type against a fake view of the cluster."""

import datetime
import json

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import detect

SINCE = 1795368600.0  # 2026-11-22T17:30:00Z
AFTER = "2026-11-22T17:30:20Z"
BEFORE = "2026-11-22T17:20:00Z"


def pod(name, waiting=None, terminated=None, last=None, restarts=0, ready=True, scheduled=None, created=AFTER):
    status = {"name": "app", "restartCount": restarts, "state": {}, "lastState": {}}
    if waiting:
        status["state"]["waiting"] = {"reason": waiting}
    if terminated:
        status["state"]["terminated"] = terminated
    if last:
        status["lastState"]["terminated"] = last
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": scheduled})
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"containerStatuses": [status], "conditions": conditions}}


class FakeView:
    namespace = "seo-tool"

    def __init__(self, pods=(), events=(), slices=None, claims=None, logs=None, prom=None, baseline=None):
        self._pods = list(pods)
        self._events = list(events)
        self._slices = slices
        self._claims = claims or {}
        self._logs = logs or {}
        self._prom = prom or {}
        self.since = SINCE
        self.baseline = baseline or {}
        self.queries = []

    def pods(self, workload):
        return self._pods

    def events(self):
        return self._events

    def endpoint_slices(self, service):
        return self._slices

    def claim(self, name):
        return self._claims.get(name)

    def log(self, pod_name, container, previous=False):
        return self._logs.get((pod_name, previous), "")

    def prom(self, query):
        self.queries.append(query)
        for needle, value in self._prom.items():
            if needle in query:
                return value
        return None


W = "Deployment/backend-api"


def test_terminated_reason_counts_only_after_the_injection():
    oom = {"reason": "OOMKilled", "exitCode": 137, "finishedAt": AFTER}
    spec = {"type": "pod_terminated_reason", "workload": W, "reason": "OOMKilled"}
    met, detail = detect.evaluate(spec, FakeView([pod("p1", last=oom)]))
    assert met and detail == {"pod": "p1", "container": "app", "reason": "OOMKilled", "exit_code": 137,
                              "detect": "pod_terminated_reason"}
    old = dict(oom, finishedAt=BEFORE)
    assert not detect.evaluate(spec, FakeView([pod("p1", last=old, created=BEFORE)]))[0]
    exit2 = {"type": "pod_terminated_reason", "workload": W, "reason": "Error", "exit_code": 2}
    assert not detect.evaluate(exit2, FakeView([pod("p1", terminated={"reason": "Error", "exitCode": 1,
                                                                      "finishedAt": AFTER})]))[0]
    assert detect.evaluate(exit2, FakeView([pod("p1", terminated={"reason": "Error", "exitCode": 2,
                                                                  "finishedAt": AFTER})]))[0]


def test_waiting_unschedulable_and_restarts():
    view = FakeView([pod("p1", waiting="CreateContainerConfigError"),
                     pod("p2", scheduled="0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector"),
                     pod("p3", restarts=3)], baseline={"p3/app": 1})
    assert detect.evaluate({"type": "pod_waiting_reason", "workload": W,
                            "reason": "CreateContainerConfigError"}, view)[0]
    assert not detect.evaluate({"type": "pod_waiting_reason", "workload": W, "reason": "CrashLoopBackOff"}, view)[0]
    assert detect.evaluate({"type": "pod_unschedulable", "workload": W, "message_contains": "node affinity"}, view)[0]
    assert detect.evaluate({"type": "pod_restarts", "workload": W, "min": 2}, view)[1]["restarts"] == 2
    assert not detect.evaluate({"type": "pod_restarts", "workload": W, "min": 3}, view)[0]


def test_event_reason_after_the_injection_on_the_workloads_pods():
    events = [{"involvedObject": {"kind": "Pod", "name": "backend-api-7d9-x1"}, "reason": "Unhealthy",
               "message": "Readiness probe failed: context deadline exceeded", "lastTimestamp": AFTER},
              {"involvedObject": {"kind": "Pod", "name": "redis-1"}, "reason": "Unhealthy", "lastTimestamp": AFTER}]
    spec = {"type": "event_reason", "workload": W, "reason": "Unhealthy", "message_contains": "deadline"}
    assert detect.evaluate(spec, FakeView(events=events))[1]["pod"] == "backend-api-7d9-x1"
    events[0]["lastTimestamp"] = BEFORE
    assert not detect.evaluate(spec, FakeView(events=events))[0]


def test_endpoints_claims_and_logs():
    no_svc = {"type": "no_ready_endpoints", "service": "backend-api"}
    assert detect.evaluate(no_svc, FakeView(slices=None))[1]["service_exists"] is False
    unready = [{"endpoints": [{"conditions": {"ready": False}}]}]
    assert detect.evaluate(no_svc, FakeView(slices=unready))[0]
    assert not detect.evaluate(no_svc, FakeView(slices=[{"endpoints": [{"conditions": {"ready": True}}]}]))[0]
    pvc = {"type": "pvc_phase", "claim": "c", "phase": "Pending"}
    assert detect.evaluate(pvc, FakeView(claims={"c": {"status": {"phase": "Pending"}}}))[0]
    assert not detect.evaluate(pvc, FakeView())[0]
    logs = {"type": "log_match", "workload": W, "pattern": "PermissionError", "previous": True}
    view = FakeView([pod("p1")], logs={("p1", True): "x\nPermissionError: [Errno 13] /etc/seo/credentials/db-password\n"})
    assert detect.evaluate(logs, view)[1]["previous"] is True
    with pytest.raises(detect.DetectError, match="pattern"):
        detect.evaluate({"type": "log_match", "workload": W, "pattern": "("}, view)


def test_metric_types_build_namespaced_queries():
    view = FakeView(prom={"seo_error_rate": 0.31, 'code="502"': 0.05, 'outcome="timeout"': 0.9})
    met, detail = detect.evaluate({"type": "error_rate", "service": "api-gateway", "min": 0.2}, view)
    assert met and detail["value"] == 0.31
    assert 'namespace="seo-tool"' in view.queries[0] and 'service="api-gateway"' in view.queries[0]
    assert 'job!="reachability"' in view.queries[0]
    assert not detect.evaluate({"type": "http_status_share", "service": "api-gateway", "code": "502",
                                "min_share": 0.2}, view)[0]
    assert 'route!~"/health|/livez|/metrics"' in view.queries[1]
    assert detect.evaluate({"type": "upstream_outcome", "service": "backend-api", "upstream": "postgres",
                            "outcome": "timeout", "min_share": 0.5}, view)[0]
    assert not detect.evaluate({"type": "error_rate", "service": "x", "min": 0.2}, FakeView())[0]


def test_any_of_all_of_and_unknown():
    view = FakeView([pod("p1", waiting="CrashLoopBackOff")], slices=[])
    spec = {"type": "any_of", "of": [{"type": "pod_waiting_reason", "workload": W, "reason": "Nope"},
                                     {"type": "no_ready_endpoints", "service": "backend-api"}]}
    assert detect.evaluate(spec, view)[1]["detect"] == "no_ready_endpoints"
    both = {"type": "all_of", "of": spec["of"]}
    assert not detect.evaluate(both, view)[0]
    with pytest.raises(detect.DetectError, match="unknown detect type 'telepathy'"):
        detect.evaluate({"type": "telepathy"}, view)


def test_alert_state_and_readiness():
    answer = {"data": {"alerts": [{"labels": {"alertname": "ServiceDown", "namespace": "other"}, "state": "firing"},
                                  {"labels": {"alertname": "ServiceDown", "namespace": "seo-tool"}, "state": "pending"}]}}
    assert detect.alert_state(answer, "ServiceDown", "seo-tool") == "pending"
    assert detect.alert_state(answer, "ServiceDown") == "firing"
    assert detect.alert_state(answer, "HighErrorRate", "seo-tool") == "inactive"
    pods = [pod("a"), pod("b", ready=False), dict(pod("c"), metadata={"name": "c", "deletionTimestamp": AFTER})]
    assert detect.pod_readiness(pods) == (1, 2)
    assert detect.restart_counts([pod("a", restarts=2)]) == {"a/app": 2}


def test_parse_ts():
    assert detect._parse_ts("2026-11-22T17:30:00Z") == SINCE
    assert detect._parse_ts("2026-11-22T17:30:00.250000Z") == SINCE + 0.25
    assert detect._parse_ts(None) is None and detect._parse_ts("garbage") is None


def test_unschedulable_pods_are_named():
    pods = [pod("p1"), pod("p2", scheduled="0/1 nodes are available: 1 Insufficient cpu.")]
    assert detect.unschedulable(pods) == ["p2: 0/1 nodes are available: 1 Insufficient cpu."]


# --------------------------------------------------------------------------------------
# the alert's time is Prometheus' own (activeAt + the rule's for), not the engine's poll

RULES = {"status": "success", "data": {"groups": [{"name": "seo", "rules": [
    {"type": "alerting", "name": "ServiceDown", "duration": 30, "alerts": [
        {"labels": {"alertname": "ServiceDown", "namespace": "other"}, "state": "firing",
         "activeAt": "2026-11-29T08:00:00.5Z"},
        {"labels": {"alertname": "ServiceDown", "namespace": "seo-tool"}, "state": "firing",
         "activeAt": "2026-11-29T08:01:02.123456789Z"},
        {"labels": {"alertname": "ServiceDown", "namespace": "seo-tool"}, "state": "pending",
         "activeAt": "2026-11-29T08:00:30Z"}]},
    {"type": "recording", "name": "seo:errors"}]}]}}


def test_alert_timing_is_prometheus_firing_time_in_the_drill_namespace():
    timing = detect.alert_timing(RULES, "ServiceDown", "seo-tool")
    active = datetime.datetime(2026, 11, 29, 8, 1, 2, 123457, tzinfo=datetime.timezone.utc).timestamp()
    assert timing == {"active_at": round(active, 3), "for_s": 30.0, "fired_at": round(active + 30, 3)}
    # pending instances and other namespaces' do not count; no firing instance: None
    assert detect.alert_timing(RULES, "HighErrorRate", "seo-tool") is None
    # an instance without a readable activeAt has no time to give
    blank = json.loads(json.dumps(RULES).replace("2026-11-29T08:01:02.123456789Z", ""))
    assert detect.alert_timing(blank, "ServiceDown", "seo-tool") is None
