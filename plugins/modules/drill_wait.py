#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_wait
short_description: Check once whether a drill's symptom is there or its alert fires
version_added: 0.1.0
description:
  - One check per call, for C(until)/C(retries) loops. Never changes anything.
  - O(condition=symptom) evaluates the catalog entry's C(symptom.detect) spec on the cluster
    and Prometheus (container states and exit codes, waiting reasons, scheduling, restarts
    since O(baseline), pod events, ready endpoints, claim phases, log lines, 5xx shares);
    only what happened after O(since) counts.
  - O(condition=alert) reads Prometheus' alerts; met when O(alert) is firing.
  - Every result carries C(alert_state) and C(pods_ready)/C(pods_total), which the
    C(opsdrill.drills.drill_scorecard) callback shows as one progress line while retrying.
author: opsdrill maintainers (@opsdrill)
options:
  condition:
    description: What to check.
    type: str
    choices: [symptom, alert]
    required: true
  detect:
    description: The detect spec (C(entry.symptom.detect)). Required for O(condition=symptom).
    type: dict
  alert:
    description: The seed alert (ServiceDown, HighErrorRate). Required for O(condition=alert); also reported for symptoms.
    type: str
  since:
    description: When the fault was injected (epoch seconds); earlier terminations, events and log lines do not count.
    type: float
  confirm_s:
    description:
      - With O(condition=symptom), a symptom seen is checked again after this many seconds and
        only counts when it is still there. Transient states (the gap of a rolling restart, a
        pod between two probes) then do not pass for the fault's symptom.
    type: float
    default: 0
  poll_s:
    description:
      - With O(timeout_at), check again every this many seconds until the condition is met or
        O(timeout_at) has passed (one module run per wait). 0 checks once.
    type: float
    default: 0
  timeout_at:
    description: Epoch seconds after which the result says C(timed_out); loop with C(until) on C(met or timed_out), or give O(poll_s).
    type: float
  baseline:
    description: Restart counts at injection (C(restart_baseline) of C(opsdrill.drills.drill_fault)).
    type: dict
    default: {}
  prometheus:
    description: C(service:port) of Prometheus in O(namespace)'s control namespace, C(namespace/service:port) (API server service proxy), or an http(s) URL.
    type: str
    default: prometheus:9090
  label_selector:
    description: Pods counted for the progress line.
    type: str
    default: app.kubernetes.io/part-of=opsdrill-seo-tool
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Wait for the symptom
  opsdrill.drills.drill_wait:
    namespace: seo-tool
    condition: symptom
    detect: "{{ drill_fault.entry.symptom.detect }}"
    alert: ServiceDown
    since: "{{ drill_injected.injected_at }}"
    timeout_at: "{{ drill_injected.injected_at + 90 }}"
    baseline: "{{ drill_injected.restart_baseline }}"
  register: drill_symptom
  until: drill_symptom.met or drill_symptom.timed_out
  retries: 100
  delay: 2
  failed_when: false
"""

RETURN = r"""
alert_timing:
  description:
    - For O(condition=alert) once met, Prometheus' own times of the firing alert
      C({active_at, for_s, fired_at}) (epoch seconds; C(fired_at) is C(activeAt) plus the
      rule's C(for)); null when Prometheus' rules API did not answer.
  returned: when the alert fires
  type: dict
met:
  description: Whether the condition holds.
  returned: always
  type: bool
detail:
  description: What was seen (the detect type that matched, pod, reason, value, ...).
  returned: always
  type: dict
observed_at:
  description: When the condition was seen (epoch seconds; before its confirmation).
  returned: always
  type: float
checked_at:
  description: When the check ended (epoch seconds; after the confirmation).
  returned: always
  type: float
elapsed_s:
  description: Seconds since O(since).
  returned: always
  type: float
timed_out:
  description: Whether O(timeout_at) has passed (when the condition is not met by then, it did not come in time).
  returned: always
  type: bool
alert_state:
  description: State of O(alert) - C(firing), C(pending), C(inactive) or C(unknown).
  returned: always
  type: str
pods_ready:
  description: Ready pods among O(label_selector).
  returned: always
  type: int
pods_total:
  description: Pods among O(label_selector).
  returned: always
  type: int
unschedulable:
  description: Pods among O(label_selector) the scheduler cannot place, with its reason (a fault whose new pods wait for CPU shows no symptom).
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import detect
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest


SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        condition={"type": "str", "choices": ["symptom", "alert"], "required": True},
        detect={"type": "dict"},
        alert={"type": "str"},
        since={"type": "float"},
        confirm_s={"type": "float", "default": 0},
        poll_s={"type": "float", "default": 0},
        timeout_at={"type": "float"},
        baseline={"type": "dict", "default": {}},
        prometheus={"type": "str", "default": "prometheus:9090"},
        label_selector={"type": "str", "default": "app.kubernetes.io/part-of=opsdrill-seo-tool"},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    required_if=[("condition", "symptom", ("detect",)), ("condition", "alert", ("alert",))],
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"], timeout=15, check=False)
    except engine_client.ClusterUnreachable as exc:
        module.fail_json(msg=str(exc))
    since = params["since"] if params["since"] is not None else time.time()
    # Poll here, not with the task's until/retries: one module start-up per wait, and a
    # check every poll_s seconds exactly.
    while True:
        try:
            result = check_once(client, params, since)
        except detect.DetectError as exc:
            module.fail_json(msg=str(exc))
        if result["met"] or result["timed_out"] or params["poll_s"] <= 0 or params["timeout_at"] is None:
            break
        time.sleep(min(params["poll_s"], max(0.0, params["timeout_at"] - time.time())))
    module.exit_json(**result)


def main():
    run(AnsibleModule(**SPEC))


def check_once(client, params, since):
    """One look at the cluster (and Prometheus) for the condition. DetectError: a bad spec."""
    now = time.time()
    result = {"changed": False, "met": False, "detail": {}, "observed_at": round(now, 3),
              "checked_at": round(now, 3),
              "elapsed_s": round(now - since, 1), "alert_state": "unknown", "pods_ready": None,
              "pods_total": None,
              "timed_out": params["timeout_at"] is not None and now >= params["timeout_at"],
              "unschedulable": []}
    try:
        view = detect.ClusterView(client, params["namespace"], params["prometheus"], since, params["baseline"])
        if params["condition"] == "symptom":
            met, detail = detect.evaluate(params["detect"], view)
            if met and params["confirm_s"] > 0:
                time.sleep(params["confirm_s"])
                again = detect.ClusterView(client, params["namespace"], params["prometheus"], since,
                                           params["baseline"])
                met, detail = detect.evaluate(params["detect"], again)
                result["checked_at"] = round(time.time(), 3)
            result.update(met=met, detail=detail or {})
        if params["alert"]:
            result["alert_state"] = view.alert_state(params["alert"])
            if params["condition"] == "alert":
                result["met"] = result["alert_state"] == "firing"
                result["detail"] = {"alert": params["alert"], "state": result["alert_state"]}
                if result["met"]:
                    # The alert's time is Prometheus' own, not this poll's.
                    result["alert_timing"] = view.alert_timing(params["alert"])
        pods = client.list("Pod", params["namespace"], label_selector=params["label_selector"])
        result["pods_ready"], result["pods_total"] = detect.pod_readiness(pods)
        result["unschedulable"] = detect.unschedulable(pods)
    except k8s_rest.K8sError as exc:
        # A flaky moment of the API server is not the end of the wait: report and go on.
        result["detail"] = {"error": str(exc)}
    return result


if __name__ == "__main__":
    main()
