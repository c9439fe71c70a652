# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The least privilege a drill runs with: a ServiceAccount's RBAC for one drill namespace.

This is what AWX's Kubernetes credential (or a drill pod's ServiceAccount) needs, and no
more: Roles in the drill namespace and in its control namespace, nothing cluster-wide (a
RoleBinding grants ``get`` on its own Namespace object, which is all the target check
reads). The drill namespace's rules are the dead-man's switch's (``deadman.RULES``: the
runner creates a Role with them, so it must hold them) plus what observing needs (events,
endpoints, service proxies); the control namespace's are the drill's own objects (its state,
key, locks, the switch's Job, ServiceAccount, Role and RoleBinding) and the monitoring's
and the desk's service proxies.
"""
from __future__ import annotations

import copy

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import deadman
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot

__all__ = ["CONTROL_RULES", "DRILL_RULES", "manifests"]

_OWN = ["get", "list", "create", "update", "patch", "delete"]
_NAMESPACE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
_PROXY = {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get", "create"]}
_RBAC = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
         "verbs": ["get", "create", "delete"]}

DRILL_RULES = copy.deepcopy(deadman.RULES) + [
    {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["get", "list"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list"]},
    _PROXY, _RBAC, _NAMESPACE,
]

CONTROL_RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "serviceaccounts"], "verbs": _OWN},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete", "deletecollection"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": _OWN},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": _OWN},
    _PROXY, _RBAC, _NAMESPACE,
]


def manifests(namespace, service_account, account_namespace=None, name="opsdrill-drill-runner"):
    """ServiceAccount (in ``account_namespace``, default the control namespace), Roles and
    RoleBindings that let it run drills in ``namespace``."""
    control = snapshot.control_namespace(namespace)
    account_namespace = account_namespace or control
    labels = {"app.kubernetes.io/part-of": "opsdrill", "app.kubernetes.io/component": "drill-runner"}
    objects = [{"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": service_account, "namespace": account_namespace, "labels": labels}}]
    for where, rules in ((namespace, DRILL_RULES), (control, CONTROL_RULES)):
        meta = {"name": name, "namespace": where, "labels": labels}
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
                        "rules": copy.deepcopy(rules)})
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                        "metadata": dict(meta),
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                        "subjects": [{"kind": "ServiceAccount", "name": service_account,
                                      "namespace": account_namespace}]})
    return objects
