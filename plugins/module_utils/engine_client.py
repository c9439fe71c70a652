# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one cluster client of opsdrill's controller-side code.

Credentials and transport come from the official ``kubernetes`` package, so a drill runs
wherever kubectl and kubernetes.core run: kubeconfig exec plugins (EKS, GKE, AKS with
kubelogin) and auth providers, token files, client certificates, in-cluster ServiceAccount
tokens, and the ``K8S_AUTH_*`` variables that AWX's Kubernetes credential sets. The verbs
(get, list, patch, ... on plain dicts) and the errors (``k8s_rest.ApiError``) are those of
``runtime.k8s_rest``, the standard-library client that stays only where it must: in the
dead-man's switch, on a stock Python image.

Where the credentials come from, first match wins (kubernetes.core's order):

1. the ``kubeconfig`` option, or ``K8S_AUTH_KUBECONFIG``, with ``context`` / ``K8S_AUTH_CONTEXT``;
2. ``K8S_AUTH_HOST`` with ``K8S_AUTH_API_KEY``, ``K8S_AUTH_SSL_CA_CERT`` and
   ``K8S_AUTH_VERIFY_SSL`` (AWX's "OpenShift or Kubernetes API Bearer Token" credential);
3. in a pod: its ServiceAccount;
4. ``$KUBECONFIG``, else ``~/.kube/config``.

The package is imported once per ansible-playbook: the engine's actions import their module
in the controller's main process (the strategy loads action classes there), and every task's
worker is a fork of it.
"""

from __future__ import annotations

import base64
import json
import os

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    KUBERNETES_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported by connect()
    KUBERNETES_IMPORT_ERROR = _exc

# Argument spec of the cluster options every opsdrill module takes (doc fragment
# opsdrill.drills.cluster, module_defaults group/opsdrill.drills.k8s).
CLUSTER_ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}

ENV_HOST = "K8S_AUTH_HOST"

__all__ = ["CLUSTER_ARGUMENT_SPEC", "Client", "ClusterUnreachable", "connect", "credential_source",
           "resolved_kubeconfig"]


class ClusterUnreachable(Exception):
    """No usable cluster configuration or no answer from the API server. The message names
    the kubeconfig and context, or the host, that was tried."""


def _truthy(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def credential_source(kubeconfig=None, context=None, environ=None):
    """Which credentials ``connect`` uses: ``(kind, details)``; kind is ``kubeconfig``,
    ``host``, ``in-cluster`` or ``default-kubeconfig``. Pure (the unit tests read it)."""
    environ = os.environ if environ is None else environ
    path = kubeconfig or environ.get("K8S_AUTH_KUBECONFIG") or None
    context = context or environ.get("K8S_AUTH_CONTEXT") or None
    if path:
        return "kubeconfig", {"path": os.path.abspath(os.path.expanduser(path)), "context": context}
    if environ.get(ENV_HOST):
        verify = environ.get("K8S_AUTH_VERIFY_SSL")
        return "host", {"host": environ[ENV_HOST].rstrip("/"),
                        "api_key": environ.get("K8S_AUTH_API_KEY") or None,
                        "ca_cert": environ.get("K8S_AUTH_SSL_CA_CERT") or None,
                        "verify_ssl": True if verify in (None, "") else _truthy(verify)}
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "in-cluster", {}
    default = (environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    return "default-kubeconfig", {"path": default, "context": context}


def describe(kind, details):
    """'kubeconfig X, context Y', 'host H (K8S_AUTH_HOST)' or 'in-cluster ServiceAccount'."""
    if kind == "host":
        return "host %s (%s)" % (details["host"], ENV_HOST)
    if kind == "in-cluster":
        return "in-cluster ServiceAccount"
    return "kubeconfig %s, context %s" % (details["path"], details["context"] or "(current-context)")


def _configuration(kind, details):
    configuration = k8s_client.Configuration()
    if kind == "host":
        configuration.host = details["host"]
        if details["api_key"]:
            configuration.api_key = {"authorization": "Bearer " + details["api_key"]}
        configuration.ssl_ca_cert = details["ca_cert"]
        configuration.verify_ssl = details["verify_ssl"]
    elif kind == "in-cluster":
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=details["path"], context=details["context"],
                                    client_configuration=configuration, persist_config=False)
    return configuration


class Client(k8s_rest.Client):
    """``k8s_rest.Client``'s verbs over the official package's configuration and transport."""

    # pylint: disable-next=super-init-not-called
    def __init__(self, configuration, timeout=30, namespace="default", source="kubeconfig"):
        self.server = configuration.host.rstrip("/")
        self.source = source
        self.namespace = namespace
        self.timeout = timeout
        self.configuration = configuration
        self.api_client = k8s_client.ApiClient(configuration)
        self.server_version = None  # read by connect(check=True)

    def request(self, method, path, body=None, query=None, content_type="application/json",
                raw=False, headers=None):
        url = self.server + (path if path.startswith("/") else "/" + path)
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None and v != ""]
        headers = dict(headers or {}, Accept="application/json", **{"Content-Type": content_type})
        # Calls the exec plugin / re-reads the token again when the token has expired.
        authorization = self.configuration.get_api_key_with_prefix("authorization")
        if authorization:
            headers["Authorization"] = authorization
        try:
            response = self.api_client.rest_client.request(
                method, url, query_params=query_params, headers=headers, body=body,
                _request_timeout=self.timeout)
        except ApiException as exc:
            if not exc.status:  # the package's wrapper of an SSL error
                raise k8s_rest.ApiError(0, "Unreachable", "%s: %s" % (self.server, exc.reason), method, path)
            text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
            raise k8s_rest.error_from_answer(exc.status, exc.reason, text, method, path)
        except urllib3.exceptions.HTTPError as exc:
            raise k8s_rest.ApiError(0, "Unreachable", "%s: %s" % (self.server, exc), method, path)
        text = response.data or ""  # the package decodes the body already (bytes in older releases)
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if raw:
            return text
        return json.loads(text) if text else {}


def _file_data(path):
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def resolved_kubeconfig(client):
    """A kubeconfig (dict, JSON-ready) with the credentials ``client`` uses now, for the
    controller's watchdog, which runs the standard-library client; None in a pod (the
    watchdog reads the ServiceAccount itself). An exec plugin's token is the one it printed
    last: if it expires before the watchdog acts, the in-cluster switch still restores."""
    if client.source == "in-cluster":
        return None
    configuration = client.configuration
    cluster = {"server": client.server}
    if not configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    elif configuration.ssl_ca_cert:
        cluster["certificate-authority-data"] = _file_data(configuration.ssl_ca_cert)
    user = {}
    if configuration.cert_file and configuration.key_file:
        user["client-certificate-data"] = _file_data(configuration.cert_file)
        user["client-key-data"] = _file_data(configuration.key_file)
    authorization = configuration.get_api_key_with_prefix("authorization") or ""
    if authorization.startswith("Bearer "):
        user["token"] = authorization[len("Bearer "):]
    return {"apiVersion": "v1", "kind": "Config", "current-context": "opsdrill",
            "clusters": [{"name": "opsdrill", "cluster": cluster}],
            "users": [{"name": "opsdrill", "user": user}],
            "contexts": [{"name": "opsdrill", "context": {"cluster": "opsdrill", "user": "opsdrill"}}]}


def connect(kubeconfig=None, context=None, timeout=30, check=True):
    """A ``Client``; with ``check`` the API server must answer /version (kept as
    ``server_version``). Raises ``ClusterUnreachable`` naming what was tried."""
    kind, details = credential_source(kubeconfig, context)
    where = describe(kind, details)
    if KUBERNETES_IMPORT_ERROR is not None:
        raise ClusterUnreachable("the Python package kubernetes is needed on the controller (pip install "
                                 "kubernetes): %s" % KUBERNETES_IMPORT_ERROR)
    try:
        configuration = _configuration(kind, details)
    except Exception as exc:  # the package raises ConfigException, OSError, ValueError, ...
        raise ClusterUnreachable("cannot load cluster credentials (%s): %s" % (where, exc)) from exc
    client = Client(configuration, timeout=timeout, source=kind)
    if check:
        try:
            client.server_version = client.request("GET", "/version").get("gitVersion")
        except k8s_rest.ApiError as exc:
            raise ClusterUnreachable("cluster unreachable (%s, server %s): %s" % (where, client.server, exc)) from exc
    return client
