#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_control_namespace
short_description: Make sure a drill namespace's control namespace exists
version_added: 0.1.0
description:
  - Creates the control namespace of a drill namespace when missing (docs/contracts.md
    section 7), labelled with the drill namespace it serves, Pod Security C(restricted).
    It holds the drill state, the locks, the dead-man's switch and the standalone
    monitoring; trainees hold no write access in it.
  - Fails when a namespace of that name exists but is not opsdrill's control namespace
    for this drill namespace.
  - Removal is M(opsdrill.drills.drill_deadman)'s (O(opsdrill.drills.drill_deadman#module:remove_control_namespace)).
author: opsdrill maintainers (@opsdrill)
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Make sure seo-tool's control namespace exists
  opsdrill.drills.drill_control_namespace:
    namespace: seo-tool
  register: control
"""

RETURN = r"""
name:
  description: The control namespace.
  returned: always
  type: str
  sample: opsdrill-ctl-seo-tool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import RestoreError
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


SPEC = dict(
    argument_spec=dict(namespace={"type": "str", "required": True}, **engine_client.CLUSTER_ARGUMENT_SPEC),
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    namespace = module.params["namespace"]
    name = snapshot.control_namespace(namespace)
    try:
        client = engine_client.connect(module.params["kubeconfig"], module.params["context"])
        missing = client.get_or_none("Namespace", name) is None
        if not module.check_mode:
            drill_state.ensure_control_namespace(client, namespace)
    except (engine_client.ClusterUnreachable, k8s_rest.K8sError, RestoreError) as exc:
        module.fail_json(msg="control namespace of %s: %s" % (namespace, exc), name=name)
    module.exit_json(changed=missing, name=name)


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
