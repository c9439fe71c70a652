# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drill_runner_rbac filter: a ServiceAccount and the least-privilege RBAC a drill runs with
(plugins/module_utils/runner_access.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.module_utils import runner_access


def drill_runner_rbac(namespace, service_account, account_namespace=None):
    for name, value in (("namespace", namespace), ("service_account", service_account)):
        if not isinstance(value, str) or not value:
            raise AnsibleFilterError("drill_runner_rbac: %s must be a non-empty name, got %r" % (name, value))
    return runner_access.manifests(namespace, service_account, account_namespace or None)


class FilterModule:
    def filters(self):
        return {"drill_runner_rbac": drill_runner_rbac}
