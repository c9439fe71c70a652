#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drill_lease
short_description: Hold or release a namespace's drill Lease (one drill per namespace)
version_added: 0.1.0
description:
  - O(state=present) takes the coordination.k8s.io Lease C(opsdrill-drill) in O(namespace)
    for O(holder), or renews it when O(holder) holds it already.
  - When another drill holds it, fails naming the holder, where it runs and since when,
    and changes nothing. An expired Lease is taken over only when no armed drill state is
    left in the namespace.
  - O(state=absent) releases it when O(holder) holds it (any holder with O(force)).
author: opsdrill maintainers (@opsdrill)
options:
  holder:
    description: The drill id holding the namespace.
    type: str
  state:
    description: Held (present) or released (absent).
    type: str
    choices: [present, absent]
    default: present
  duration_s:
    description: Seconds the Lease stays valid without renewal (cover the drill's hard deadline).
    type: int
    default: 3600
  info:
    description: Where the holder runs, shown to refused drills (keys scenario, variant, controller-host, controller-pid, controller-user).
    type: dict
    default: {}
  force:
    description: With O(state=absent), release whoever holds it (rollback.yml after a lost controller).
    type: bool
    default: false
extends_documentation_fragment:
  - opsdrill.drills.cluster
  - opsdrill.drills.cluster.drill_namespace
"""

EXAMPLES = r"""
- name: Take the namespace for this drill
  opsdrill.drills.drill_lease:
    namespace: seo-tool
    holder: seo-tool-20261122T173000Z
    duration_s: 2400

- name: Release it
  opsdrill.drills.drill_lease:
    namespace: seo-tool
    holder: seo-tool-20261122T173000Z
    state: absent
"""

RETURN = r"""
action:
  description: C(create), C(renew) or C(takeover) (present); C(released) or C(kept) (absent).
  returned: success
  type: str
holder:
  description: The holder after the call (present) or before it (absent).
  returned: success
  type: str
acquire_time:
  description: Since when the holder holds the namespace.
  returned: when present
  type: str
"""

import json
import os
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman
from ansible_collections.opsdrill.drills.plugins.module_utils import drill_lock
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


def _state_armed(client, namespace):
    configmap = client.get_or_none("ConfigMap", snapshot.STATE_CONFIGMAP, snapshot.control_namespace(namespace))
    if configmap is None:
        return False
    try:
        return bool(json.loads((configmap.get("data") or {}).get("state.json") or "{}").get("armed"))
    except ValueError:
        return True


SPEC = dict(
    argument_spec=dict(
        namespace={"type": "str", "required": True},
        holder={"type": "str"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        duration_s={"type": "int", "default": 3600},
        info={"type": "dict", "default": {}},
        force={"type": "bool", "default": False},
        **engine_client.CLUSTER_ARGUMENT_SPEC),
    required_if=[("state", "present", ("holder",))],
    supports_check_mode=True,
)


def run(module):
    """The module's work. ``module`` is an AnsibleModule, or the in-process stand-in
    (plugin_utils/in_process.py) when the action runs it in the controller's worker."""
    params = module.params
    namespace = params["namespace"]
    try:
        client = engine_client.connect(params["kubeconfig"], params["context"])
        if params["state"] == "absent":
            changed, previous = drill_lock.release(client, namespace, params["holder"], params["force"],
                                                   module.check_mode)
            module.exit_json(changed=changed, action="released" if changed else "kept", holder=previous)
        info = {"controller-host": socket.gethostname(), "controller-pid": deadman.controller_pid() or os.getppid(),
                "controller-user": os.environ.get("USER") or str(os.getuid())}
        info.update({k: v for k, v in params["info"].items() if v not in (None, "")})
        changed, action, lease = drill_lock.acquire(
            client, namespace, params["holder"], params["duration_s"], info,
            state_armed=_state_armed(client, namespace), check_mode=module.check_mode)
    except drill_lock.LockRefused as exc:
        module.fail_json(msg=str(exc), refused=True)
    except (engine_client.ClusterUnreachable, k8s_rest.K8sError) as exc:
        module.fail_json(msg=str(exc))
    spec = lease.get("spec") or {}
    module.exit_json(changed=changed, action=action, holder=spec.get("holderIdentity"),
                     acquire_time=spec.get("acquireTime"))


def main():
    run(AnsibleModule(**SPEC))


if __name__ == "__main__":
    main()
