#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: steady_state
short_description: Report whether a drill namespace is in its steady state
version_added: 0.1.0
description:
  - Reads every Deployment in the namespace (optionally by label selector), calls each service's
    health endpoint through the API server's service proxy, and reads Prometheus' alerts.
  - Never changes anything. It reports; the caller decides, for example with C(until) on RV(healthy).
author: opsdrill maintainers (@opsdrill)
options:
  namespace:
    description: Namespace to judge.
    type: str
    required: true
  label_selector:
    description: Only Deployments matching this selector count.
    type: str
    default: app.kubernetes.io/part-of=opsdrill-seo-tool
  health_services:
    description: Services whose C(/health) must answer 200, as C(name) or C(name:port) (port default 80).
    type: list
    elements: str
    default: []
  prometheus:
    description:
      - Where Prometheus answers. C(service:port) in O(namespace)'s control namespace (or C(namespace/service:port)) goes through the API server's
        service proxy; a C(http://) or C(https://) URL is called directly (monitoring_mode external).
      - Empty skips the alert check.
    type: str
    default: ""
  alert_names:
    description:
      - Alerts that must not be firing for a steady state - every scenario's seed alert
        (C(opsdrill.drills.scenario_alert_names) filter, from the scenario records).
    type: list
    elements: str
    required: true
  timeout_at:
    description:
      - Wait until this time (epoch seconds) for the steady state to hold; unset, one look.
      - While waiting, RV(healthy) becomes true only once the steady state has held for
        O(hold_s) with at least O(min_checks) healthy looks in a row, O(poll_s) apart; a
        relapse starts the hold again. RV(healthy_since) is when the held stretch began.
    type: float
  begin_by:
    description:
      - A healthy stretch must begin by this time (epoch seconds) to count; when none is
        under way then, the wait ends (the response window's end).
    type: float
  hold_s:
    description: Seconds the steady state must hold (with O(timeout_at)).
    type: float
    default: 0
  min_checks:
    description: Healthy looks in a row the hold needs at least (with O(timeout_at)).
    type: int
    default: 1
  poll_s:
    description: Seconds between looks (with O(timeout_at)).
    type: float
    default: 5
requirements:
  - kubernetes (Python client)
extends_documentation_fragment:
  - opsdrill.drills.cluster
"""

EXAMPLES = r"""
- name: Wait for the steady state
  opsdrill.drills.steady_state:
    namespace: seo-tool
    health_services: [api-gateway, backend-api]
    alert_names: "{{ [] | opsdrill.drills.scenario_alert_names }}"
    prometheus: prometheus:9090
  register: steady
  until: steady.healthy
  retries: 60
  delay: 5
"""

RETURN = r"""
healthy:
  description: Every Deployment available, every health check 200, no listed alert firing.
  returned: always
  type: bool
problems:
  description: One line per reason it is not healthy.
  returned: always
  type: list
  elements: str
alerts_firing:
  description: Listed alerts that are firing.
  returned: always
  type: list
  elements: str
alerts_pending:
  description: Listed alerts that are pending.
  returned: always
  type: list
  elements: str
healthy_since:
  description: When the held healthy stretch began (epoch seconds); null when it did not hold.
  returned: with O(timeout_at)
  type: float
held_s:
  description: How long the last healthy stretch lasted (seconds).
  returned: with O(timeout_at)
  type: float
checks:
  description: Healthy looks in a row of the last stretch.
  returned: with O(timeout_at)
  type: int
relapses:
  description: Healthy stretches that broke before they held.
  returned: with O(timeout_at)
  type: int
pods_ready:
  description: Ready pods and all pods of the selected workloads, as "ready/total".
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils import steady_state
from ansible_collections.opsdrill.drills.plugins.module_utils.detect import pod_ready
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.k8s_rest import service_proxy_path
from ansible_collections.opsdrill.drills.plugins.module_utils.prometheus_api import prometheus_get


SPEC = dict(
    argument_spec={
        "namespace": {"type": "str", "required": True},
        "label_selector": {"type": "str", "default": "app.kubernetes.io/part-of=opsdrill-seo-tool"},
        "health_services": {"type": "list", "elements": "str", "default": []},
        "prometheus": {"type": "str", "default": ""},
        "alert_names": {"type": "list", "elements": "str", "required": True},
        "timeout_at": {"type": "float"},
        "hold_s": {"type": "float", "default": 0},
        "begin_by": {"type": "float"},
        "min_checks": {"type": "int", "default": 1},
        "poll_s": {"type": "float", "default": 5},
        **engine_client.CLUSTER_ARGUMENT_SPEC,
    },
    supports_check_mode=True,
)


def check(client, params):
    """One look: ``{healthy, problems, alerts_firing, alerts_pending, pods_ready}``."""
    namespace = params["namespace"]
    try:
        deployments = client.list("Deployment", namespace, label_selector=params["label_selector"])
        pods = client.list("Pod", namespace, label_selector=params["label_selector"])
    except Exception as exc:
        return dict(healthy=False, problems=[f"API error: {exc}"], alerts_firing=[], alerts_pending=[], pods_ready="?")

    problems = steady_state.deployment_problems(deployments)
    if not deployments:
        problems.append(f"no Deployments match {params['label_selector']} in namespace {namespace}")
    ready = sum(1 for pod in pods if pod_ready(pod))

    results = []
    for item in params["health_services"]:
        service, _sep, port = item.partition(":")
        status, body = client.get_status(service_proxy_path(namespace, service, port or "80", "/health"))
        results.append({"name": service, "status": status, "body": body})
    problems += steady_state.health_problems(results)

    firing, pending = [], []
    if params["prometheus"]:
        try:
            status, body = prometheus_get(client, namespace, params["prometheus"], "/api/v1/alerts")
            if status != 200:
                problems.append(f"Prometheus alerts API answered {status}")
            else:
                firing = steady_state.firing_alerts(body, params["alert_names"])
                pending = steady_state.pending_alerts(body, params["alert_names"])
                problems += [f"alert {name} is firing" for name in firing]
        except Exception as exc:
            problems.append(f"Prometheus unreachable at {params['prometheus']}: {exc}")
    return dict(healthy=not problems, problems=problems, alerts_firing=firing, alerts_pending=pending,
                pods_ready=f"{ready}/{len(pods)}")


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"], timeout=10, check=False)
    except engine_client.ClusterUnreachable as exc:
        module.fail_json(msg=str(exc))
    if params["timeout_at"] is None:
        module.exit_json(changed=False, **check(client, params))
    # Wait here until the steady state has held for hold_s with at least min_checks
    # healthy looks in a row; a relapse starts the hold again.
    hold = steady_state.Hold(params["hold_s"], params["min_checks"])
    result = steady_state.wait_until_held(lambda: check(client, params), hold, params["timeout_at"],
                                          params["begin_by"], params["poll_s"])
    result.update(healthy=hold.held, healthy_since=hold.since if hold.held else None, held_s=hold.held_s, checks=hold.checks,
                  relapses=hold.relapses)
    module.exit_json(changed=False, **result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
