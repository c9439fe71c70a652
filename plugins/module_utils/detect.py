# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is a fault's symptom there? Evaluate a catalog ``detect`` spec against the cluster.

The detect types are those of ``catalog.DETECT_TYPES`` (docs/contracts.md section 4).
``evaluate(spec, view)`` is pure given a *view*: an object answering the few questions
the specs ask (pods of a workload, events, endpoint slices, a claim, pod logs, a
Prometheus instant query). ``ClusterView`` answers them from the API (``k8s_rest``
client) and Prometheus; the unit tests use a fake.

Only what happened after the injection counts: terminations, events and log lines are
taken from ``since`` on, restarts are counted above the ``baseline`` taken at injection.
"""
from __future__ import annotations

import datetime
import json
import math
import re
import string
import time

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils import prometheus_api

__all__ = ["ClusterView", "DetectError", "alert_state", "evaluate", "pod_ready", "pod_readiness",
           "promql", "restart_counts", "unschedulable"]

# Grace for clock skew between the controller and the node (seconds).
SKEW_S = 5
# Prometheus series scraped through a Service (job "reachability") double the pod series.
_NOT_REACHABILITY = 'job!="reachability"'
# Routes that are not application traffic.
_NOT_PROBES = 'route!~"/health|/livez|/metrics"'


class DetectError(ValueError):
    """A detect spec cannot be evaluated (unknown type, bad field)."""


# --------------------------------------------------------------------------------------
# helpers on API objects

def _parse_ts(value):
    """Epoch seconds of an API timestamp (``...Z``, fractional seconds, ``+00:00``)."""
    if not value:
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]00:?00)?$", str(value))
    if not match:
        return None
    stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + (float(match.group(2)) if match.group(2) else 0.0)


def _statuses(pod, container=None):
    status = pod.get("status") or {}
    out = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    if container:
        out = [s for s in out if s.get("name") == container]
    return out


def _pod_name(pod):
    return (pod.get("metadata") or {}).get("name", "?")


def _created(pod):
    return _parse_ts((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0


def restart_counts(pods):
    """``{"pod/container": restartCount}`` (the baseline for ``pod_restarts``)."""
    return {"%s/%s" % (_pod_name(p), s.get("name")): int(s.get("restartCount") or 0)
            for p in pods for s in _statuses(p)}


def pod_ready(pod):
    """The pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_readiness(pods):
    """(ready, total) of the pods that are not being deleted."""
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    return sum(1 for p in live if pod_ready(p)), len(live)


def unschedulable(pods):
    """``"pod: message"`` of the pods the scheduler cannot place."""
    out = []
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                out.append("%s: %s" % (_pod_name(pod), (cond.get("message") or cond.get("reason") or "")[:160]))
    return out


def promql(template, **labels):
    """A PromQL expression with label values quoted safely."""
    quoted = {k: json.dumps(str(v)) for k, v in labels.items()}
    return template.format(**quoted)


# --------------------------------------------------------------------------------------
# the detect types

def _pod_waiting_reason(spec, view):
    for pod in view.pods(spec["workload"]):
        for st in _statuses(pod, spec.get("container")):
            reason = ((st.get("state") or {}).get("waiting") or {}).get("reason")
            if reason == spec["reason"]:
                return True, {"pod": _pod_name(pod), "container": st.get("name"), "reason": reason}
    return False, None


def _pod_terminated_reason(spec, view):
    since = view.since - SKEW_S
    for pod in view.pods(spec["workload"]):
        for st in _statuses(pod, spec.get("container")):
            for where in ("state", "lastState"):
                term = (st.get(where) or {}).get("terminated") or {}
                if term.get("reason") != spec["reason"]:
                    continue
                if "exit_code" in spec and term.get("exitCode") != spec["exit_code"]:
                    continue
                finished = _parse_ts(term.get("finishedAt")) or _created(pod)
                if finished < since:
                    continue
                return True, {"pod": _pod_name(pod), "container": st.get("name"),
                              "reason": term.get("reason"), "exit_code": term.get("exitCode")}
    return False, None


def _pod_unschedulable(spec, view):
    wanted = spec.get("message_contains")
    for pod in view.pods(spec["workload"]):
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                    and cond.get("reason") == "Unschedulable":
                if wanted and wanted not in (cond.get("message") or ""):
                    continue
                return True, {"pod": _pod_name(pod), "message": (cond.get("message") or "")[:200]}
    return False, None


def _pod_restarts(spec, view):
    total, pods = 0, []
    for pod in view.pods(spec["workload"]):
        for st in _statuses(pod, spec.get("container")):
            key = "%s/%s" % (_pod_name(pod), st.get("name"))
            grown = int(st.get("restartCount") or 0) - int(view.baseline.get(key, 0))
            if grown > 0:
                total += grown
                pods.append(_pod_name(pod))
    if total >= int(spec["min"]):
        return True, {"restarts": total, "pods": sorted(set(pods))}
    return False, None


def _workload_pod_names(view, workload):
    kind, name = workload.split("/", 1)
    names = {_pod_name(p) for p in view.pods(workload)}
    prefix = name + "-" if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") else None
    return names, prefix


def _event_reason(spec, view):
    names, prefix = _workload_pod_names(view, spec["workload"])
    wanted = spec.get("message_contains")
    since = view.since - SKEW_S
    for event in view.events():
        involved = event.get("involvedObject") or event.get("regarding") or {}
        if involved.get("kind") != "Pod" or event.get("reason") != spec["reason"]:
            continue
        pod = involved.get("name") or ""
        if pod not in names and not (prefix and pod.startswith(prefix)):
            continue
        when = max(_parse_ts(event.get("lastTimestamp")) or 0,
                   _parse_ts(event.get("eventTime")) or 0,
                   _parse_ts((event.get("series") or {}).get("lastObservedTime")) or 0,
                   _parse_ts((event.get("metadata") or {}).get("creationTimestamp")) or 0)
        if when < since:
            continue
        message = event.get("message") or event.get("note") or ""
        if wanted and wanted not in message:
            continue
        return True, {"pod": pod, "reason": event.get("reason"), "message": message[:200]}
    return False, None


def _no_ready_endpoints(spec, view):
    slices = view.endpoint_slices(spec["service"])
    ready = 0
    for item in slices or []:
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                ready += 1
    if ready == 0:
        return True, {"service": spec["service"], "ready_endpoints": 0,
                      "service_exists": slices is not None}
    return False, None


def _pvc_phase(spec, view):
    claim = view.claim(spec["claim"])
    phase = ((claim or {}).get("status") or {}).get("phase")
    if claim is not None and phase == spec["phase"]:
        return True, {"claim": spec["claim"], "phase": phase}
    return False, None


def _log_match(spec, view):
    try:
        pattern = re.compile(spec["pattern"])
    except re.error as exc:
        raise DetectError("log_match pattern %r: %s" % (spec["pattern"], exc))
    previous = bool(spec.get("previous"))
    for pod in view.pods(spec["workload"]):
        containers = [s.get("name") for s in _statuses(pod, spec.get("container"))] \
            or [c.get("name") for c in ((pod.get("spec") or {}).get("containers") or [])[:1]]
        for container in containers:
            for prev in ((True, False) if previous else (False,)):
                text = view.log(_pod_name(pod), container, prev)
                for line in (text or "").splitlines():
                    if pattern.search(line):
                        return True, {"pod": _pod_name(pod), "container": container,
                                      "previous": prev, "line": line.strip()[:300]}
    return False, None


def _metric(value, spec_min, detail):
    if value is not None and value >= spec_min:
        detail["value"] = round(value, 4)
        return True, detail
    return False, None


def _error_rate(spec, view):
    query = promql("max(seo_error_rate{{namespace={ns},service={svc}," + _NOT_REACHABILITY + "}})",
                   ns=view.namespace, svc=spec["service"])
    return _metric(view.prom(query), float(spec["min"]),
                   {"service": spec["service"], "metric": "seo_error_rate"})


def _http_status_share(spec, view):
    labels = "namespace={ns},service={svc}," + _NOT_REACHABILITY + "," + _NOT_PROBES
    args = {"ns": view.namespace, "svc": spec["service"]}
    if spec.get("route"):
        labels += ",route={route}"
        args["route"] = spec["route"]
    query = promql("sum(rate(seo_http_requests_total{{" + labels + ",code={code}}}[1m])) / "
                   "sum(rate(seo_http_requests_total{{" + labels + "}}[1m]))",
                   code=str(spec["code"]), **args)
    return _metric(view.prom(query), float(spec["min_share"]),
                   {"service": spec["service"], "code": str(spec["code"])})


def _upstream_outcome(spec, view):
    labels = "namespace={ns},service={svc},upstream={up}," + _NOT_REACHABILITY
    query = promql("sum(rate(seo_upstream_requests_total{{" + labels + ",outcome={outcome}}}[1m])) / "
                   "sum(rate(seo_upstream_requests_total{{" + labels + "}}[1m]))",
                   ns=view.namespace, svc=spec["service"], up=spec["upstream"],
                   outcome=spec["outcome"])
    return _metric(view.prom(query), float(spec["min_share"]),
                   {"service": spec["service"], "upstream": spec["upstream"],
                    "outcome": spec["outcome"]})


def _promql(spec, view):
    query = string.Template(str(spec["query"])).safe_substitute(namespace=view.namespace)
    value = view.prom(query)
    if value is not None and value > float(spec["above"]):
        return True, {"query": query, "value": round(value, 4)}
    return False, None


def _any_of(spec, view):
    for sub in spec["of"]:
        met, detail = evaluate(sub, view)
        if met:
            return True, detail
    return False, None


def _all_of(spec, view):
    details = []
    for sub in spec["of"]:
        met, detail = evaluate(sub, view)
        if not met:
            return False, None
        details.append(detail)
    return True, {"all_of": details}


# Detect type -> (evaluator, required fields, optional fields): the one table of the
# types a catalog entry may use (the catalog validates specs against it). ``workload`` is
# ``Kind/name`` (pods are found through its selector), ``service`` a Service name.
DETECT_TYPES = {
    "pod_waiting_reason": (_pod_waiting_reason, ("workload", "reason"), ("container",)),
    "pod_terminated_reason": (_pod_terminated_reason, ("workload", "reason"), ("exit_code", "container")),
    "pod_unschedulable": (_pod_unschedulable, ("workload",), ("message_contains",)),
    "pod_restarts": (_pod_restarts, ("workload", "min"), ("container",)),
    "event_reason": (_event_reason, ("workload", "reason"), ("message_contains",)),
    "no_ready_endpoints": (_no_ready_endpoints, ("service",), ()),
    "pvc_phase": (_pvc_phase, ("claim", "phase"), ()),
    "log_match": (_log_match, ("workload", "pattern"), ("previous", "container")),
    "error_rate": (_error_rate, ("service", "min"), ()),
    "http_status_share": (_http_status_share, ("service", "code", "min_share"), ("route",)),
    "upstream_outcome": (_upstream_outcome, ("service", "upstream", "outcome", "min_share"), ()),
    # Any PromQL expression (${namespace} is the drill namespace) whose value exceeds
    # ``above``: a team's own metric, a latency quantile.
    "promql": (_promql, ("query", "above"), ()),
    "any_of": (_any_of, ("of",), ()),
    "all_of": (_all_of, ("of",), ()),
}
EVALUATORS = {name: row[0] for name, row in DETECT_TYPES.items()}


def evaluate(spec, view):
    """``(met, detail)``: whether the symptom ``spec`` describes is there. ``detail``
    (a dict with ``detect``: the type that matched) says what was seen."""
    if not isinstance(spec, dict) or spec.get("type") not in EVALUATORS:
        raise DetectError("unknown detect type %r; types: %s"
                          % ((spec or {}).get("type") if isinstance(spec, dict) else spec,
                             ", ".join(sorted(EVALUATORS))))
    met, detail = EVALUATORS[spec["type"]](spec, view)
    if met and spec["type"] not in ("any_of", "all_of"):
        detail = dict(detail or {}, detect=spec["type"])
    return met, detail


def alert_state(alerts_response, alert, namespace=None):
    """``firing``, ``pending`` or ``inactive`` for ``alert`` in a /api/v1/alerts answer;
    alerts labelled with another namespace are ignored (a shared Prometheus)."""
    payload = json.loads(alerts_response) if isinstance(alerts_response, str) else alerts_response
    states = set()
    for item in ((payload or {}).get("data") or {}).get("alerts") or []:
        labels = item.get("labels") or {}
        if labels.get("alertname") != alert:
            continue
        if namespace and labels.get("namespace") not in (None, namespace):
            continue
        states.add(item.get("state"))
    for state in ("firing", "pending"):
        if state in states:
            return state
    return "inactive"


def alert_timing(rules_response, alert, namespace=None):
    """When ``alert`` fired by Prometheus' own clock, from a /api/v1/rules answer:
    ``{active_at, for_s, fired_at}`` (epoch seconds; ``fired_at`` = ``activeAt`` plus the
    rule's ``for``, exact to one evaluation interval) of its earliest firing instance,
    or None when no instance fires."""
    payload = json.loads(rules_response) if isinstance(rules_response, str) else rules_response
    best = None
    for group in ((payload or {}).get("data") or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            if rule.get("type") != "alerting" or rule.get("name") != alert:
                continue
            for item in rule.get("alerts") or []:
                labels = item.get("labels") or {}
                if item.get("state") != "firing":
                    continue
                if namespace and labels.get("namespace") not in (None, namespace):
                    continue
                active = _parse_ts(item.get("activeAt"))
                if active is None:
                    continue
                for_s = float(rule.get("duration") or 0)
                if best is None or active < best["active_at"]:
                    best = {"active_at": round(active, 3), "for_s": for_s,
                            "fired_at": round(active + for_s, 3)}
    return best


# --------------------------------------------------------------------------------------
# the live view

class ClusterView:
    """Answers the detect specs' questions from the API and Prometheus, once per
    evaluation (results are cached on the instance)."""

    def __init__(self, client, namespace, prometheus="prometheus:9090", since=None,
                 baseline=None, log_tail=500):
        self.client = client
        self.namespace = namespace
        self.prometheus = prometheus
        self.since = float(since if since is not None else time.time())
        self.baseline = dict(baseline or {})
        self.log_tail = log_tail
        self._pods = {}
        self._events = None
        self.queries = []

    # -- Kubernetes ----------------------------------------------------------------------

    def _selector(self, workload):
        kind, name = workload.split("/", 1)
        obj = self.client.get_or_none(kind, name, self.namespace)
        if obj is None:
            return None
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return ",".join("%s=%s" % (k, v) for k, v in sorted(labels.items())) or None

    def pods(self, workload):
        if workload not in self._pods:
            selector = self._selector(workload)
            self._pods[workload] = self.client.list("Pod", self.namespace, label_selector=selector) \
                if selector else []
        return self._pods[workload]

    def events(self):
        if self._events is None:
            self._events = self.client.list("Event", self.namespace,
                                            field_selector="involvedObject.kind=Pod")
        return self._events

    def endpoint_slices(self, service):
        """EndpointSlices of the Service, or None when the Service does not exist."""
        if self.client.get_or_none("Service", service, self.namespace) is None:
            return None
        return self.client.list("EndpointSlice", self.namespace,
                                label_selector="kubernetes.io/service-name=%s" % service)

    def claim(self, name):
        return self.client.get_or_none("PersistentVolumeClaim", name, self.namespace)

    def log(self, pod, container, previous=False):
        seconds = max(1, int(math.ceil(time.time() - self.since)) + SKEW_S)
        try:
            return self.client.request(
                "GET", k8s_rest.resource_path("Pod", self.namespace, pod, "log"),
                query={"container": container, "previous": "true" if previous else None,
                       "sinceSeconds": seconds, "tailLines": self.log_tail}, raw=True)
        except k8s_rest.ApiError:
            return ""  # no previous container yet, container not started, pod gone

    # -- Prometheus ----------------------------------------------------------------------

    def prometheus_get(self, path, query=None):
        """(status, parsed JSON or None) from Prometheus: ``service:port`` in the drill
        namespace's control namespace (or ``namespace/service:port``) through the API
        server's service proxy, or an http(s) URL (prometheus_api.service_of)."""
        status, body = prometheus_api.prometheus_get(self.client, self.namespace, self.prometheus, path, query)
        if status != 200:
            return status, None
        try:
            return status, json.loads(body)
        except ValueError:
            return 0, None

    def prom(self, expression):
        """The first sample of an instant query, or None (no data, NaN, unreachable)."""
        self.queries.append(expression)
        status, payload = self.prometheus_get("/api/v1/query", {"query": expression})
        if status != 200 or not payload:
            return None
        for sample in (payload.get("data") or {}).get("result") or []:
            try:
                value = float(sample["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if not math.isnan(value) and not math.isinf(value):
                return value
        return None

    def alert_timing(self, alert):
        status, payload = self.prometheus_get("/api/v1/rules", {"type": "alert"})
        if status != 200 or payload is None:
            return None
        return alert_timing(payload, alert, self.namespace)

    def alert_state(self, alert):
        status, payload = self.prometheus_get("/api/v1/alerts")
        if status != 200 or payload is None:
            return "unknown"
        return alert_state(payload, alert, self.namespace)
