# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill engine modules' cluster connection: ``k8s_rest`` (the same client the
dead-man's switch runs), configured like the kubernetes.core modules."""

from __future__ import annotations

import os

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest

# Argument spec of the cluster options every opsdrill module takes (doc fragment
# opsdrill.drills.cluster, module_defaults group/opsdrill.drills.k8s). It lives here, not
# in kube_client: importing the kubernetes package costs every module start half a second.
CLUSTER_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}

__all__ = ["CLUSTER_ARGUMENT_SPEC", "ClusterUnreachable", "connect", "kubeconfig_path"]


class ClusterUnreachable(Exception):
    """No usable cluster configuration or no answer from the API server."""


def kubeconfig_path(kubeconfig=None):
    """The kubeconfig in use: the option, K8S_AUTH_KUBECONFIG, else None (k8s_rest then
    tries in-cluster credentials, $KUBECONFIG and ~/.kube/config)."""
    path = kubeconfig or os.environ.get("K8S_AUTH_KUBECONFIG") or None
    return os.path.abspath(os.path.expanduser(path)) if path else None


def connect(kubeconfig=None, context=None, timeout=30, check=True):
    """A ``k8s_rest.Client``; with ``check`` the API server must answer /version."""
    path = kubeconfig_path(kubeconfig)
    context = context or os.environ.get("K8S_AUTH_CONTEXT") or None
    where = "kubeconfig %s, context %s" % (path or os.environ.get("KUBECONFIG") or "(in-cluster or ~/.kube/config)",
                                           context or "(current-context)")
    try:
        client = k8s_rest.Client.from_env(path, context, timeout=timeout)
    except k8s_rest.K8sError as exc:
        raise ClusterUnreachable("cannot load cluster credentials (%s): %s" % (where, exc))
    if check:
        try:
            client.request("GET", "/version")
        except k8s_rest.ApiError as exc:
            raise ClusterUnreachable("cluster unreachable (%s, server %s): %s" % (where, client.server, exc))
    return client
