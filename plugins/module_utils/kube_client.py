# -*- coding: utf-8 -*-
# Copyright: opsdrill maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way for opsdrill's modules to reach a cluster, with an error that says what was tried."""

from __future__ import annotations

import os

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc
    ApiException = Exception


class ClusterUnreachable(Exception):
    """The cluster could not be reached with the kubeconfig and context given."""


def describe_target(kubeconfig, context):
    """Human-readable 'kubeconfig X, context Y' for error messages."""
    path = kubeconfig or os.environ.get("K8S_AUTH_KUBECONFIG") or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return f"kubeconfig {path}, context {context or '(current-context)'}"


def new_api_client(kubeconfig=None, context=None):
    """An ApiClient from the kubeconfig/context, else in-cluster credentials (AWX in a pod)."""
    kubeconfig = kubeconfig or os.environ.get("K8S_AUTH_KUBECONFIG") or None
    context = context or os.environ.get("K8S_AUTH_CONTEXT") or None
    try:
        if kubeconfig or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
        k8s_config.load_incluster_config()
        return k8s_client.ApiClient()
    except Exception as exc:  # the kubernetes client raises several unrelated types here
        raise ClusterUnreachable(f"cannot load cluster credentials ({describe_target(kubeconfig, context)}): {exc}") from exc


def check_reachable(api_client, kubeconfig=None, context=None, timeout=10):
    """Return the server version; raise ClusterUnreachable naming kubeconfig and context."""
    try:
        info = k8s_client.VersionApi(api_client).get_code(_request_timeout=timeout)
        return info.git_version
    except Exception as exc:
        raise ClusterUnreachable(
            f"cluster unreachable ({describe_target(kubeconfig, context)}, server {api_client.configuration.host}): {exc}"
        ) from exc


def raw_get(api_client, path, timeout=10, query=None):
    """GET an API path (e.g. a service proxy URL); returns (status, body text)."""
    try:
        response = api_client.call_api(
            path, "GET", query_params=list((query or {}).items()), auth_settings=["BearerToken"],
            _preload_content=False, _request_timeout=timeout, response_type="str",
        )
        data = response[0]
        return data.status, data.data.decode("utf-8", "replace")
    except ApiException as exc:
        return exc.status, (exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or exc.reason))


def service_proxy_path(namespace, service, port, path):
    """The API server's proxy path to a Service port: works wherever kubectl works."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"


def module_api_client(module, check=False):
    """An ApiClient for an AnsibleModule with the cluster options; fails the module clearly.

    check: also call the API server once, so an unreachable cluster fails here.
    """
    from ansible.module_utils.basic import missing_required_lib
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    kubeconfig, context = module.params.get("kubeconfig"), module.params.get("context")
    try:
        api = new_api_client(kubeconfig, context)
        version = check_reachable(api, kubeconfig, context) if check else None
    except ClusterUnreachable as exc:
        module.fail_json(msg=str(exc))
    return api, version
