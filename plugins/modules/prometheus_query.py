#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_query
short_description: Read from a drill namespace's Prometheus HTTP API
version_added: 0.1.0
description:
  - GETs a Prometheus API path through the Kubernetes API server's service proxy, so it works
    wherever kubectl works, or directly at a URL for an existing Prometheus.
  - Read-only; never changes anything.
author: opsdrill maintainers (@opsdrill)
options:
  namespace:
    description: Drill namespace; a C(service:port) O(prometheus) is in its control namespace.
    type: str
    required: true
  prometheus:
    description: C(service:port) in O(namespace)'s control namespace, C(namespace/service:port), or an C(http://)/C(https://) URL.
    type: str
    default: prometheus:9090
  path:
    description: API path, e.g. C(/api/v1/rules), C(/api/v1/alerts), C(/api/v1/query).
    type: str
    default: /api/v1/alerts
  query:
    description: Query parameters, for example C(query=up) as a dict.
    type: dict
    default: {}
requirements:
  - kubernetes (Python client)
extends_documentation_fragment:
  - opsdrill.drills.cluster
"""

EXAMPLES = r"""
- name: Wait for the seed alert
  opsdrill.drills.prometheus_query:
    namespace: seo-tool
    path: /api/v1/alerts
  register: alerts
  until: "'ServiceDown' in alerts.alerts_firing"
  retries: 60
  delay: 2
"""

RETURN = r"""
status:
  description: HTTP status (0 when unreachable).
  returned: always
  type: int
json:
  description: The parsed answer, when it is JSON.
  returned: when JSON
  type: dict
alert_rules:
  description: Alerting rule names (for /api/v1/rules).
  returned: always
  type: list
  elements: str
alerts_firing:
  description: Firing alert names (for /api/v1/alerts).
  returned: always
  type: list
  elements: str
alerts_pending:
  description: Pending alert names (for /api/v1/alerts).
  returned: always
  type: list
  elements: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils import steady_state
from ansible_collections.opsdrill.drills.plugins.module_utils.prometheus_api import prometheus_get


SPEC = dict(
    argument_spec={
        "namespace": {"type": "str", "required": True},
        "prometheus": {"type": "str", "default": "prometheus:9090"},
        "path": {"type": "str", "default": "/api/v1/alerts"},
        "query": {"type": "dict", "default": {}},
        **engine_client.CLUSTER_ARGUMENT_SPEC,
    },
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    client = None
    if not params["prometheus"].startswith(("http://", "https://")):
        try:
            client = engine_client.connect(params["kubeconfig"], params["context"], check=False)
        except engine_client.ClusterUnreachable as exc:
            module.fail_json(msg=str(exc))
    status, body = prometheus_get(client, params["namespace"], params["prometheus"], params["path"], params["query"])
    result = {"changed": False, "status": status, "alert_rules": [], "alerts_firing": [], "alerts_pending": []}
    try:
        payload = json.loads(body)
        result["json"] = payload
    except ValueError:
        payload = None
        result["body"] = body[:2000]
    if status == 200 and payload:
        if params["path"].rstrip("/").endswith("/rules"):
            result["alert_rules"] = steady_state.rule_names(payload)
        elif params["path"].rstrip("/").endswith("/alerts"):
            result["alerts_firing"] = steady_state.firing_alerts(payload)
            result["alerts_pending"] = steady_state.pending_alerts(payload)
    module.exit_json(**result)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
