#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_state_info
short_description: Read a namespace's drill state
version_added: 0.1.0
description:
  - Reads ConfigMap C(opsdrill-drill-state) (docs/contracts.md section 5) and returns the
    drill it belongs to, its phase, whether it is armed, the last restore's outcome and the
    snapshotted objects (names only; no Secret values).
  - Read-only.
author: opsdrill maintainers (@opsdrill)
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Find the drill left in the namespace
  opsdrill.drills.drill_state_info:
    namespace: seo-tool
  register: drill_state
"""

RETURN = r"""
exists:
  description: Whether the namespace has a drill state.
  returned: always
  type: bool
drill:
  description: C({drill_id, scenario, variant, fault, namespace}) of the state.
  returned: when exists
  type: dict
intact:
  description: The state passed its integrity check (HMAC); when not, RV(drill) and RV(state) are empty.
  returned: when exists
  type: bool
problem:
  description: Why the state is not intact.
  returned: when not intact
  type: str
state:
  description: state.json (armed, phase, started, deadline, created, post_restore, restore, ...).
  returned: when exists
  type: dict
objects:
  description: The snapshotted objects, as Kind/name.
  returned: when exists
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_state
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.errors import IntegrityError, RestoreError
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


SPEC = dict(
    argument_spec=dict(namespace={"type": "str", "required": True}, **engine_client.CLUSTER_ARGUMENT_SPEC),
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    namespace = module.params["namespace"]
    try:
        client = engine_client.connect(module.params["kubeconfig"], module.params["context"])
        if client.get_or_none("ConfigMap", snapshot.STATE_CONFIGMAP, snapshot.control_namespace(namespace)) is None:
            module.exit_json(changed=False, exists=False)
        state, objects, _configmap = drill_state.load_state(client, namespace)
    except IntegrityError as exc:
        # Changed or unreadable: nothing in it is trusted (not even the drill id); the
        # rollback falls back to the controller's local copy.
        module.exit_json(changed=False, exists=True, intact=False, problem=str(exc), drill={}, state={},
                         objects=[])
    except (engine_client.ClusterUnreachable, k8s_rest.K8sError, RestoreError,
            snapshot.SnapshotError) as exc:
        module.fail_json(msg=str(exc))
    drill = {key: state.get(key) for key in ("drill_id", "scenario", "variant", "fault")}
    drill["namespace"] = state.get("namespace") or namespace
    module.exit_json(changed=False, exists=True, intact=True, drill=drill, state=state,
                     objects=[snapshot.ref_of(o) for o in objects])


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
