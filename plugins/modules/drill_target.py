#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_target
short_description: Check that a cluster is reachable and a namespace may be used for drills
version_added: 0.1.0
description:
  - Fails, changing nothing, when the cluster cannot be reached (naming the kubeconfig and context
    tried), when the namespace is C(default), C(kube-system), C(kube-public) or C(kube-node-lease),
    or when it has not opted in with the label C(opsdrill.io/drill-target=true).
author: opsdrill maintainers (@opsdrill)
options:
  namespace:
    description: Namespace the drill or setup will use.
    type: str
    required: true
  allow_missing:
    description: A missing namespace is fine (the caller creates it, labelled, or is removing it).
    type: bool
    default: false
  workloads:
    description:
      - Objects, as C(Kind/name), that must exist in the namespace (a drill's target). Checked with
        one GET each, before the drill takes its Lease, so a wrong target changes nothing.
    type: list
    elements: str
    default: []
requirements:
  - kubernetes (Python client)
extends_documentation_fragment:
  - opsdrill.drills.cluster
"""

EXAMPLES = r"""
- name: Refuse anything but an opted-in namespace
  opsdrill.drills.drill_target:
    namespace: seo-tool
"""

RETURN = r"""
exists:
  description: Whether the namespace exists.
  returned: success
  type: bool
opted_in:
  description: Whether it carries the opt-in label.
  returned: success
  type: bool
missing:
  description: The O(workloads) that do not exist.
  returned: failure
  type: list
  elements: str
server_version:
  description: The API server's version.
  returned: success
  type: str
  sample: v1.34.4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.k8s_rest import KINDS, ApiError, resource_path
from ansible_collections.opsdrill.drills.plugins.module_utils.target_guard import OPT_IN_LABEL, namespace_refusal


SPEC = dict(
    argument_spec={
        "namespace": {"type": "str", "required": True},
        "allow_missing": {"type": "bool", "default": False},
        "workloads": {"type": "list", "elements": "str", "default": []},
        **engine_client.CLUSTER_ARGUMENT_SPEC,
    },
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"])
    except engine_client.ClusterUnreachable as exc:
        module.fail_json(msg=str(exc))
    try:
        namespace = client.get_or_none("Namespace", params["namespace"])
    except ApiError as exc:
        module.fail_json(msg=f"cannot read namespace {params['namespace']!r}: {exc}")
    exists = namespace is not None
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    refusal = namespace_refusal(params["namespace"], exists, labels, params["allow_missing"])
    if refusal:
        module.fail_json(msg=refusal, exists=exists, opted_in=False)
    missing = []
    for ref in params["workloads"]:
        kind, _sep, name = ref.partition("/")
        if kind not in KINDS or not KINDS[kind][2]:
            module.fail_json(msg=f"workload {ref!r}: kind {kind!r} is not a namespaced kind opsdrill knows "
                                 f"({', '.join(k for k, v in KINDS.items() if v[2])})")
        status, _body = client.get_status(resource_path(kind, params["namespace"], name))
        if status == 404:
            missing.append(ref)
        elif status != 200:
            module.fail_json(msg=f"cannot read {ref} in namespace {params['namespace']!r}: HTTP {status}")
    if missing:
        module.fail_json(msg=f"target: {', '.join(missing)} does not exist in namespace {params['namespace']!r}; "
                             f"aim the fault with -e target=NAME or Kind/NAME at a workload there",
                         exists=exists, opted_in=True, missing=missing)
    module.exit_json(changed=False, exists=exists, opted_in=labels.get(OPT_IN_LABEL) == "true", server_version=client.server_version)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
