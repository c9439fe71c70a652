# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny Kubernetes REST client: stdlib only (urllib + ssl).

It also runs inside the cluster, in the dead-man's switch, on a stock Python image.

    client = Client.from_env()              # in-cluster, else $KUBECONFIG / ~/.kube/config
    dep = client.get("Deployment", "backend-api", "seo-tool")
    client.replace(dep)
    client.scale("Deployment", "postgres", "seo-tool", 1)

Configuration: in-cluster (ServiceAccount token and CA under
``/var/run/secrets/kubernetes.io/serviceaccount``; the token is re-read every minute,
bound tokens rotate) or a kubeconfig (client certificate/key or token, as files or
``-data``; parsed as JSON when it is JSON, else with PyYAML when that is installed).
exec and auth-provider plugins are not supported. Every API error raises ``ApiError``
with the HTTP status, the API's reason and message, the method and the path.
"""
from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["ApiError", "Client", "ConfigError", "KINDS", "K8sError", "error_from_answer", "resource_path",
           "service_proxy_path"]

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# kind -> (API prefix, plural, namespaced)
KINDS = {
    "Pod": ("api/v1", "pods", True),
    "Service": ("api/v1", "services", True),
    "Endpoints": ("api/v1", "endpoints", True),
    "Secret": ("api/v1", "secrets", True),
    "ConfigMap": ("api/v1", "configmaps", True),
    "PersistentVolumeClaim": ("api/v1", "persistentvolumeclaims", True),
    "ServiceAccount": ("api/v1", "serviceaccounts", True),
    "Event": ("api/v1", "events", True),
    "Namespace": ("api/v1", "namespaces", False),
    "Node": ("api/v1", "nodes", False),
    "PersistentVolume": ("api/v1", "persistentvolumes", False),
    "Deployment": ("apis/apps/v1", "deployments", True),
    "StatefulSet": ("apis/apps/v1", "statefulsets", True),
    "DaemonSet": ("apis/apps/v1", "daemonsets", True),
    "ReplicaSet": ("apis/apps/v1", "replicasets", True),
    "Lease": ("apis/coordination.k8s.io/v1", "leases", True),
    "EndpointSlice": ("apis/discovery.k8s.io/v1", "endpointslices", True),
    "StorageClass": ("apis/storage.k8s.io/v1", "storageclasses", False),
}


class K8sError(Exception):
    """Base of this client's errors."""


class ConfigError(K8sError):
    """No usable cluster configuration."""


class ApiError(K8sError):
    """The API server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status, reason, message, method="", path="", body=None):
        self.status = status
        self.reason = reason
        self.message = message
        self.method = method
        self.path = path
        self.body = body
        where = " (%s %s)" % (method, path) if method else ""
        if status:
            text = "HTTP %d %s: %s%s" % (status, reason or "", message or "", where)
        else:
            text = "API server unreachable: %s%s" % (message, where)
        super().__init__(text)

    @property
    def not_found(self):
        return self.status == 404

    @property
    def conflict(self):
        return self.status == 409


def _kind_info(kind):
    if kind not in KINDS:
        raise K8sError("unsupported kind %r; supported: %s" % (kind, ", ".join(sorted(KINDS))))
    return KINDS[kind]


def resource_path(kind, namespace=None, name=None, subresource=None):
    """/api/v1/namespaces/NS/pods/NAME/log and the like."""
    prefix, plural, namespaced = _kind_info(kind)
    parts = ["", prefix]
    if namespaced:
        if not namespace:
            raise K8sError("%s is namespaced: give a namespace" % kind)
        parts += ["namespaces", urllib.parse.quote(namespace, safe="")]
    parts.append(plural)
    if name:
        parts.append(urllib.parse.quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def service_proxy_path(namespace, service, port, path, scheme=""):
    """The API server's proxy path to a Service port (``scheme:`` before the name when
    given): works wherever kubectl works."""
    target = "%s:%s:%s" % (scheme, service, port) if scheme else "%s:%s" % (service, port)
    return "/api/v1/namespaces/%s/services/%s/proxy/%s" % (namespace, target, path.lstrip("/"))


def _api_version(kind):
    prefix = _kind_info(kind)[0]
    return prefix[len("api/"):] if prefix.startswith("api/") else prefix[len("apis/"):]


# --------------------------------------------------------------------------------------
# configuration

def _load_structured(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml  # optional: only for YAML kubeconfigs
    except ImportError:
        raise ConfigError("%s is YAML and PyYAML is not installed; convert it to JSON "
                          "(kubectl config view --raw -o json) or install PyYAML" % path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("%s: invalid kubeconfig: %s" % (path, exc))


def _named(entries, name, what, path):
    for entry in entries or []:
        if entry.get("name") == name:
            return entry.get(what) or {}
    raise ConfigError("%s: no %s %r; have: %s" % (
        path, what, name, ", ".join(e.get("name", "?") for e in entries or []) or "none"))


def _resolve(base, value):
    if value and not os.path.isabs(value):
        return os.path.join(os.path.dirname(base), value)
    return value


def load_kubeconfig(path=None, context=None):
    """Settings dict for ``Client`` from a kubeconfig file (first of $KUBECONFIG or
    ~/.kube/config when path is None)."""
    if not path:
        env = os.environ.get("KUBECONFIG", "")
        path = env.split(os.pathsep)[0] if env else os.path.expanduser("~/.kube/config")
    if not os.path.exists(path):
        raise ConfigError("kubeconfig %s does not exist" % path)
    config = _load_structured(path) or {}
    context = context or config.get("current-context")
    if not context:
        raise ConfigError("%s: no current-context and no context given" % path)
    ctx = _named(config.get("contexts"), context, "context", path)
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster", path)
    user = _named(config.get("users"), ctx.get("user"), "user", path) if ctx.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        raise ConfigError("%s: user %s uses an exec/auth-provider plugin, which this client "
                          "does not support; use a client certificate or a token"
                          % (path, ctx.get("user")))
    if not cluster.get("server"):
        raise ConfigError("%s: cluster %s has no server" % (path, ctx.get("cluster")))
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(_resolve(path, user["tokenFile"]), encoding="utf-8") as handle:
            token = handle.read().strip()
    return {
        "server": cluster["server"],
        "ca_file": _resolve(path, cluster.get("certificate-authority")),
        "ca_data": cluster.get("certificate-authority-data"),
        "insecure": bool(cluster.get("insecure-skip-tls-verify")),
        "cert_file": _resolve(path, user.get("client-certificate")),
        "cert_data": user.get("client-certificate-data"),
        "key_file": _resolve(path, user.get("client-key")),
        "key_data": user.get("client-key-data"),
        "token": token,
        "username": user.get("username"),
        "password": user.get("password"),
        "namespace": ctx.get("namespace") or "default",
    }


def in_cluster_settings(sa_dir=SA_DIR, environ=None):
    """Settings for ``Client`` inside a pod."""
    environ = os.environ if environ is None else environ
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset")
    token_file = os.path.join(sa_dir, "token")
    if not os.path.exists(token_file):
        raise ConfigError("not in a cluster: %s missing (automountServiceAccountToken off?)"
                          % token_file)
    if ":" in host:
        host = "[%s]" % host
    namespace = "default"
    ns_file = os.path.join(sa_dir, "namespace")
    if os.path.exists(ns_file):
        with open(ns_file, encoding="utf-8") as handle:
            namespace = handle.read().strip() or namespace
    return {"server": "https://%s:%s" % (host, port),
            "ca_file": os.path.join(sa_dir, "ca.crt"),
            "token_file": token_file, "namespace": namespace}


# --------------------------------------------------------------------------------------
# client

class Client:
    """Kubernetes REST calls; objects are plain dicts."""

    def __init__(self, server, ca_file=None, ca_data=None, insecure=False, cert_file=None,
                 cert_data=None, key_file=None, key_data=None, token=None, token_file=None,
                 username=None, password=None, namespace="default", timeout=30,
                 user_agent="opsdrill-k8s-rest/1"):
        self.server = server.rstrip("/")
        self.namespace = namespace
        self.timeout = timeout
        self.user_agent = user_agent
        self._token = token
        self._token_file = token_file
        self._token_read = 0.0
        self._basic = None
        if username and password:
            self._basic = base64.b64encode(("%s:%s" % (username, password)).encode()).decode()
        self._ssl = None
        if self.server.startswith("https://"):
            self._ssl = self._ssl_context(ca_file, ca_data, insecure, cert_file, cert_data,
                                          key_file, key_data)
        handlers = [urllib.request.ProxyHandler({})]
        if self._ssl is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl))
        self._opener = urllib.request.build_opener(*handlers)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path=None, context=None, **kwargs):
        settings = load_kubeconfig(path, context)
        settings.update(kwargs)
        return cls(**settings)

    @classmethod
    def in_cluster(cls, **kwargs):
        settings = in_cluster_settings()
        settings.update(kwargs)
        return cls(**settings)

    @classmethod
    def from_env(cls, kubeconfig=None, context=None, **kwargs):
        """A kubeconfig when one is given, else in-cluster when in a pod, else the
        default kubeconfig."""
        if kubeconfig:
            return cls.from_kubeconfig(kubeconfig, context, **kwargs)
        try:
            return cls.in_cluster(**kwargs)
        except ConfigError as in_cluster_error:
            try:
                return cls.from_kubeconfig(None, context, **kwargs)
            except ConfigError as exc:
                raise ConfigError("no cluster configuration: %s; %s" % (in_cluster_error, exc))

    @staticmethod
    def _ssl_context(ca_file, ca_data, insecure, cert_file, cert_data, key_file, key_data):
        if insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            cadata = base64.b64decode(ca_data).decode("ascii") if ca_data else None
            context = ssl.create_default_context(cafile=ca_file or None, cadata=cadata)
        if cert_file or cert_data:
            if not (key_file or key_data):
                raise ConfigError("a client certificate needs a client key")
            tmp = []
            try:
                if cert_data:
                    cert_file = _tempfile(base64.b64decode(cert_data), tmp)
                if key_data:
                    key_file = _tempfile(base64.b64decode(key_data), tmp)
                context.load_cert_chain(cert_file, key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError("cannot load the client certificate/key: %s" % exc)
            finally:
                for name in tmp:
                    os.unlink(name)
        return context

    # -- transport ---------------------------------------------------------------------

    def _bearer(self):
        if self._token_file and (not self._token or time.time() - self._token_read > 60):
            with open(self._token_file, encoding="utf-8") as handle:
                self._token = handle.read().strip()
            self._token_read = time.time()
        return self._token

    def request(self, method, path, body=None, query=None, content_type="application/json",
                raw=False, headers=None):
        """One API call; the decoded JSON answer (text when ``raw``). ``headers``: extra
        request headers (a service behind the API server's proxy reads them)."""
        url = self.server + (path if path.startswith("/") else "/" + path)
        if query:
            items = [(k, v) for k, v in query.items() if v is not None and v != ""]
            if items:
                url += "?" + urllib.parse.urlencode(items, doseq=True)
        data = None
        headers = dict(headers or {}, **{"Accept": "application/json", "User-Agent": self.user_agent})
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = content_type
        token = self._bearer()
        if token:
            headers["Authorization"] = "Bearer " + token
        elif self._basic:
            headers["Authorization"] = "Basic " + self._basic
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                text = resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, method, path)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, "Unreachable", "%s: %s" % (self.server, reason), method, path)
        if raw:
            return text
        return json.loads(text) if text else {}

    def get_status(self, path, query=None):
        """GET a path whose answer is not the API's own (a service behind the proxy):
        ``(status, body text)``; status 0 when the API server is unreachable."""
        try:
            return 200, self.request("GET", path, query=query, raw=True)
        except ApiError as exc:
            return exc.status, exc.message if exc.body is None else json.dumps(exc.body)

    # -- verbs -------------------------------------------------------------------------

    def _ns(self, kind, namespace):
        return (namespace or self.namespace) if _kind_info(kind)[2] else None

    def get(self, kind, name, namespace=None):
        return self.request("GET", resource_path(kind, self._ns(kind, namespace), name))

    def get_or_none(self, kind, name, namespace=None):
        try:
            return self.get(kind, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, kind, namespace=None, label_selector=None, field_selector=None):
        """Items of a list, each with kind and apiVersion filled in (lists omit them)."""
        answer = self.request("GET", resource_path(kind, self._ns(kind, namespace)),
                              query={"labelSelector": label_selector,
                                     "fieldSelector": field_selector})
        items = answer.get("items") or []
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", _api_version(kind))
        return items

    def create(self, obj, namespace=None):
        kind = obj.get("kind")
        ns = self._ns(kind, namespace or (obj.get("metadata") or {}).get("namespace"))
        return self.request("POST", resource_path(kind, ns), body=obj)

    def replace(self, obj, namespace=None):
        """PUT; the object's metadata.resourceVersion guards against lost updates."""
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        ns = self._ns(kind, namespace or meta.get("namespace"))
        return self.request("PUT", resource_path(kind, ns, meta.get("name")), body=obj)

    def patch(self, kind, name, body, namespace=None, patch_type="merge", subresource=None):
        types = {"merge": "application/merge-patch+json",
                 "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}
        if patch_type not in types:
            raise K8sError("patch_type must be one of %s" % ", ".join(types))
        return self.request("PATCH", resource_path(kind, self._ns(kind, namespace), name,
                                                   subresource),
                            body=body, content_type=types[patch_type])

    def delete(self, kind, name, namespace=None, propagation="Background", missing_ok=False):
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            return self.request("DELETE", resource_path(kind, self._ns(kind, namespace), name),
                                body=body)
        except ApiError as exc:
            if missing_ok and exc.not_found:
                return None
            raise

    def delete_collection(self, kind, namespace=None, label_selector=None):
        if not label_selector:
            raise K8sError("delete_collection needs a label selector (refusing to delete all)")
        return self.request("DELETE", resource_path(kind, self._ns(kind, namespace)),
                            query={"labelSelector": label_selector})

    def scale(self, kind, name, namespace=None, replicas=None):
        """Set replicas through the scale subresource, like ``kubectl scale``."""
        return self.patch(kind, name, {"spec": {"replicas": int(replicas)}}, namespace,
                          subresource="scale")

    def pod_log(self, name, namespace=None, container=None, previous=False, tail_lines=None):
        return self.request("GET", resource_path("Pod", self._ns("Pod", namespace), name, "log"),
                            query={"container": container,
                                   "previous": "true" if previous else None,
                                   "tailLines": tail_lines}, raw=True)


def _tempfile(content, registry):
    handle, name = tempfile.mkstemp(prefix="opsdrill-k8s-")
    registry.append(name)
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    return name


def _api_error(exc, method, path):
    text = ""
    try:
        text = exc.read().decode("utf-8", "replace")
    except Exception:  # pylint: disable=broad-except
        pass
    return error_from_answer(exc.code, exc.reason, text, method, path)


def error_from_answer(status, reason, text, method, path):
    """The ``ApiError`` of an error answer (status >= 400) whatever the transport: the
    API's Status (or a proxied service's JSON) gives reason and message."""
    message, body = text.strip()[:500], None
    try:
        body = json.loads(text)
    except ValueError:
        pass
    if isinstance(body, dict):  # a Status; a proxied service may answer any JSON
        reason = body.get("reason") or reason
        message = body.get("message") or message
    return ApiError(status, reason, message, method, path, body)
