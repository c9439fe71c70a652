#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_fix_state
short_description: Judge from the cluster whether the fault's change is still there
version_added: 0.7.0
description:
  - Reads every object the fault touched and compares it, on the paths the fault changed,
    with the snapshot's value and the fault's value (plugins/module_utils/fix_state.py).
  - The drill engine runs it just before the rollback; the scorecard judges the team's fix
    from its answer, the audit log says who changed what and when.
  - Read-only.
author: opsdrill maintainers (@opsdrill)
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
options:
  fault_change:
    description: RV(opsdrill.drills.drill_fault#module:fault_change) of the injection.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Judge the fix before the rollback
  opsdrill.drills.drill_fix_state:
    namespace: seo-tool
    fault_change: "{{ injected.fault_change }}"
  register: fix_state
"""

RETURN = r"""
objects:
  description:
    - Per touched object C({ref, verdict, paths}); C(verdict) is C(in_place) (a path still has
      the fault's value), C(changed) (another value), C(reverted) (the snapshot's value) or,
      for an object the fault left alone, C(changed) or C(untouched).
  returned: always
  type: list
  elements: dict
checked_at:
  description: When the objects were read (epoch seconds).
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils import fix_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest

SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        fault_change={"type": "list", "elements": "dict", "required": True},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    supports_check_mode=True,
)


def run(module):
    """Read each touched object once and judge it (``module``: an AnsibleModule or the
    in-process stand-in of plugin_utils/in_process.py)."""
    params = module.params
    objects = []
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"], check=False)
        for recorded in params["fault_change"]:
            kind, name = recorded["ref"].split("/", 1)
            objects.append(fix_state.judge(recorded, client.get_or_none(kind, name, params["namespace"])))
    except (engine_client.ClusterUnreachable, k8s_rest.K8sError, KeyError, ValueError) as exc:
        module.fail_json(msg="cannot judge the fix in namespace %s: %s" % (params["namespace"], exc))
    module.exit_json(changed=False, objects=objects, checked_at=round(time.time(), 3))


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
