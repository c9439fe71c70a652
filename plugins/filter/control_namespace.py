# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""control_namespace filter: a drill namespace's control namespace, from its one owner."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


def control_namespace(namespace):
    if not isinstance(namespace, str) or not namespace:
        raise AnsibleFilterError("control_namespace: expects a drill namespace name, got %r" % (namespace,))
    return snapshot.control_namespace(namespace)


class FilterModule:
    def filters(self):
        return {"control_namespace": control_namespace}
