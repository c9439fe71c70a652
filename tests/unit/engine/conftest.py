"""Fixtures for the fault engine tests: the demo stack as the API returns it, and an
in-memory fake of the small client interface restore.py uses.

The objects follow roles/test_services (python-services.yaml.j2, data-stores.yaml.j2,
secrets.yaml.j2) with the fields the API server adds: defaults, status,
metadata.uid/resourceVersion/generation/managedFields/creationTimestamp, the
deployment revision and last-applied annotations, allocated cluster IPs.
"""

import base64
import copy
import itertools
import json

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime.k8s_rest import ApiError

NS = "seo-tool"
PART_OF = {"app.kubernetes.io/part-of": "opsdrill-seo-tool", "app.kubernetes.io/managed-by": "opsdrill"}

_uid = itertools.count(1)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _probe_defaults(probe):
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
    return probe


def server_defaults(obj):
    """Idempotent API defaulting for the kinds used here (a subset of the real one)."""
    kind = obj.get("kind")
    if kind in ("Deployment",):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type") == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
        tmpl = spec.setdefault("template", {})
        tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        pod = tmpl.setdefault("spec", {})
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("schedulerName", "default-scheduler")
        pod.setdefault("securityContext", {})
        pod.setdefault("terminationGracePeriodSeconds", 30)
        for ctr in pod.get("containers", []):
            ctr.setdefault("terminationMessagePath", "/dev/termination-log")
            ctr.setdefault("terminationMessagePolicy", "File")
            ctr.setdefault("imagePullPolicy", "IfNotPresent")
            ctr.setdefault("resources", {})
            for port in ctr.get("ports", []):
                port.setdefault("protocol", "TCP")
            for key in ("readinessProbe", "livenessProbe", "startupProbe"):
                if key in ctr:
                    _probe_defaults(ctr[key])
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                vol["configMap"].setdefault("defaultMode", 420)
            if "secret" in vol:
                vol["secret"].setdefault("defaultMode", 420)
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        if "stringData" in obj:
            data = obj.setdefault("data", {})
            for key, value in obj.pop("stringData").items():
                data[key] = _b64(value)
    elif kind == "PersistentVolumeClaim":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("metadata", {}).setdefault("finalizers", ["kubernetes.io/pvc-protection"])
    return obj


def _python_app(name, tier, replicas, resources, env, secret_env=(), data_dir=False):
    labels = dict(PART_OF, app=name, tier=tier)
    env_list = [{"name": "SEO_ROLE", "value": name}, {"name": "SEO_PORT", "value": "8080"},
                {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                {"name": "PYTHONUNBUFFERED", "value": "1"}]
    env_list += [{"name": k, "value": v} for k, v in env.items()]
    env_list += [{"name": k, "valueFrom": {"secretKeyRef": {"name": s, "key": key}}}
                 for k, s, key in secret_env]
    mounts = [{"name": "code", "mountPath": "/app", "readOnly": True}]
    volumes = [{"name": "code", "configMap": {"name": "seo-service-code"}}]
    if data_dir:
        mounts.append({"name": "data", "mountPath": "/data"})
        volumes.append({"name": "data", "emptyDir": {"sizeLimit": "64Mi"}})
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels),
                     "annotations": {"kubernetes.io/change-cause": "opsdrill setup: release 1.4.2"}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": dict(labels),
                             "annotations": {"opsdrill.io/code-sha256": "0123456789abcdef"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "runAsGroup": 10001},
                    "containers": [{
                        "name": name, "image": "localhost/opsdrill/python:3.11",
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "/app/seo_service.py"],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "env": env_list,
                        "resources": copy.deepcopy(resources),
                        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"},
                                           "periodSeconds": 3, "timeoutSeconds": 2,
                                           "failureThreshold": 2},
                        "livenessProbe": {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 5,
                                          "periodSeconds": 5, "timeoutSeconds": 2,
                                          "failureThreshold": 3},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    }
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": NS,
                        "labels": dict(labels, **{"opsdrill.io/scrape": "true"})},
           "spec": {"selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return dep, svc


def _data_store(name, image, args, port, port_name, env=()):
    labels = dict(PART_OF, app=name, tier="data")
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "Recreate"},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": {
                     "automountServiceAccountToken": False, "enableServiceLinks": False,
                     "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": name, "image": image, "args": list(args),
                                     "ports": [{"name": port_name, "containerPort": port}],
                                     "env": list(env),
                                     "resources": {"requests": {"cpu": "20m", "memory": "24Mi"},
                                                   "limits": {"cpu": "200m", "memory": "64Mi"}},
                                     "readinessProbe": {"exec": {"command": ["true"]},
                                                        "periodSeconds": 3, "timeoutSeconds": 2},
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "emptyDir": {}}]}}},
    }
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
           "spec": {"selector": {"app": name},
                    "ports": [{"name": port_name, "port": port, "targetPort": port_name}]}}
    return dep, svc


def demo_manifests():
    """The stack's objects as written in the manifests (before the API touches them)."""
    out = []
    py = [
        ("rank-api", "external", 1, {"requests": {"cpu": "20m", "memory": "32Mi"},
                                     "limits": {"cpu": "200m", "memory": "64Mi"}}, {}, (), False),
        ("backend-api", "backend", 2, {"requests": {"cpu": "50m", "memory": "48Mi"},
                                       "limits": {"cpu": "500m", "memory": "96Mi"}},
         {"SEO_DB_HOST": "postgres", "SEO_DB_PORT": "5432", "SEO_DB_NAME": "seo",
          "SEO_DB_USER": "seo", "SEO_REDIS_HOST": "redis", "SEO_REDIS_PORT": "6379",
          "SEO_RANK_API_URL": "http://rank-api", "SEO_RANK_API_TIMEOUT_S": "2.0"},
         (("SEO_DB_PASSWORD", "backend-api-credentials", "db-password"),
          ("SEO_API_KEY", "backend-api-credentials", "api-key")), False),
        ("api-gateway", "edge", 2, {"requests": {"cpu": "50m", "memory": "48Mi"},
                                    "limits": {"cpu": "500m", "memory": "128Mi"}},
         {"SEO_BACKEND_URLS": "http://backend-api", "SEO_UPSTREAM_TIMEOUT_S": "3.0",
          "SEO_ROUTES": "rank,keywords,report", "SEO_DATA_DIR": "/data",
          "SEO_REDIS_HOST": "redis", "SEO_REDIS_PORT": "6379", "SEO_RATE_LIMIT_RPS": "0",
          "SEO_RELEASE": "1.4.2"},
         (("SEO_BACKEND_API_KEY", "api-gateway-credentials", "backend-api-key"),), True),
        ("frontend", "frontend", 1, {"requests": {"cpu": "20m", "memory": "32Mi"},
                                     "limits": {"cpu": "200m", "memory": "64Mi"}},
         {"SEO_GATEWAY_URL": "http://api-gateway"}, (), False),
        ("worker", "worker", 1, {"requests": {"cpu": "20m", "memory": "32Mi"},
                                 "limits": {"cpu": "200m", "memory": "64Mi"}},
         {"SEO_BACKEND_URLS": "http://backend-api", "SEO_WORKER_INTERVAL_S": "10"},
         (("SEO_BACKEND_API_KEY", "backend-api-credentials", "api-key"),), False),
        ("traffic", "loadgen", 1, {"requests": {"cpu": "30m", "memory": "32Mi"},
                                   "limits": {"cpu": "300m", "memory": "64Mi"}},
         {"SEO_GATEWAY_URL": "http://api-gateway", "SEO_TRAFFIC_RPS": "5",
          "SEO_TRAFFIC_CONCURRENCY": "4"}, (), False),
    ]
    for item in py:
        dep, svc = _python_app(*item)
        out += [dep, svc]
    out += list(_data_store("postgres", "localhost/opsdrill/postgres:15",
                            ["-c", "shared_buffers=16MB", "-c", "max_connections=50"],
                            5432, "postgres",
                            [{"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                                "name": "postgres-credentials", "key": "POSTGRES_PASSWORD"}}}]))
    out += list(_data_store("redis", "localhost/opsdrill/redis:7",
                            ["redis-server", "--save", "", "--appendonly", "no",
                             "--protected-mode", "no", "--maxmemory", "24mb"], 6379, "redis"))
    for name, data in (("postgres-credentials", {"POSTGRES_PASSWORD": "opsdrill-demo-db"}),
                       ("backend-api-credentials", {"db-password": "opsdrill-demo-db",
                                                    "api-key": "opsdrill-demo-key"}),
                       ("api-gateway-credentials", {"backend-api-key": "opsdrill-demo-key"})):
        out.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": name, "namespace": NS, "labels": dict(PART_OF)},
                    "stringData": data})
    return out


class FakeApi:
    """In-memory stand-in for k8s_rest.Client: the calls restore.py and the tests use,
    with resourceVersion checks, defaulting, allocated cluster IPs and the server/
    controller churn (status, revision annotation, managedFields) a real API adds."""

    def __init__(self, objects=(), namespace=NS):
        self.namespace = namespace
        self.store = {}
        self.rv = 1000
        self.ips = itertools.count(20)
        self.calls = []
        self.conflicts = {}      # ref -> number of replaces to reject with 409 first
        self.pods_deleted = []
        self.pod_logs = {}
        for obj in objects:
            self.create(obj)

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _ref(kind, name):
        return "%s/%s" % (kind, name)

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _server_fields(self, obj, old=None):
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", self.namespace)
        meta["uid"] = (old or {}).get("metadata", {}).get("uid") or "uid-%d" % next(_uid)
        meta["creationTimestamp"] = (old or {}).get("metadata", {}).get(
            "creationTimestamp") or "2026-11-22T17:00:00Z"
        meta["resourceVersion"] = self._next_rv()
        meta["managedFields"] = [{"manager": "kubectl", "operation": "Update",
                                  "time": "2026-11-22T17:%02d:00Z" % (self.rv % 60)}]
        server_defaults(obj)
        kind = obj["kind"]
        if kind == "Deployment":
            spec_changed = old is None or old.get("spec") != obj.get("spec")
            meta["generation"] = (old or {}).get("metadata", {}).get("generation", 0) + (
                1 if spec_changed else 0)
            ann = meta.setdefault("annotations", {})
            revision = int(((old or {}).get("metadata", {}).get("annotations") or {}).get(
                "deployment.kubernetes.io/revision", "0"))
            if old is None or (old.get("spec") or {}).get("template") != obj["spec"]["template"]:
                revision += 1
            ann["deployment.kubernetes.io/revision"] = str(revision)
            # A finished rollout, with zero counts omitted as the API server does.
            counts = {key: obj["spec"]["replicas"] for key in
                      ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")}
            obj["status"] = dict({key: value for key, value in counts.items() if value},
                                 observedGeneration=meta["generation"],
                                 conditions=[{"type": "Available", "status": "True",
                                              "lastUpdateTime": "2026-11-22T17:%02d:00Z"
                                              % (self.rv % 60)}])
        if kind == "Service":
            spec = obj["spec"]
            old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
            if old is not None:
                if spec.get("clusterIP") not in (None, "", old_ip):
                    raise ApiError(422, "Invalid", 'Service "%s" is invalid: spec.clusterIP: '
                                   "Invalid value: field is immutable" % meta["name"],
                                   "PUT", "/api/v1/services")
                spec["clusterIP"] = old_ip
            elif not spec.get("clusterIP"):
                spec["clusterIP"] = "198.18.16.%d" % next(self.ips)
            spec["clusterIPs"] = [spec["clusterIP"]]
            obj["status"] = {"loadBalancer": {}}
        if kind == "PersistentVolumeClaim":
            obj["status"] = {"phase": "Pending"}
        if kind == "Pod":
            obj["status"] = {"phase": "Succeeded"}
        return obj

    # -- the client interface ------------------------------------------------------
    def get(self, kind, name, namespace=None):
        self.calls.append(("get", kind, name))
        obj = self.store.get(self._ref(kind, name))
        if obj is None:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (kind.lower(), name), "GET",
                           "/%s/%s" % (kind, name))
        return copy.deepcopy(obj)

    def get_or_none(self, kind, name, namespace=None):
        try:
            return self.get(kind, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, kind, namespace=None, label_selector=None, field_selector=None):
        return [copy.deepcopy(o) for r, o in sorted(self.store.items()) if o["kind"] == kind]

    def create(self, obj, namespace=None):
        obj = copy.deepcopy(obj)
        if "resourceVersion" in obj.get("metadata", {}):
            raise ApiError(400, "BadRequest", "resourceVersion should not be set on objects "
                           "to be created", "POST", "/")
        ref = self._ref(obj["kind"], obj["metadata"]["name"])
        self.calls.append(("create", ref))
        if ref in self.store:
            raise ApiError(409, "AlreadyExists", '%s "%s" already exists'
                           % (obj["kind"].lower(), obj["metadata"]["name"]), "POST", "/")
        self.store[ref] = self._server_fields(obj)
        return copy.deepcopy(self.store[ref])

    def replace(self, obj, namespace=None):
        obj = copy.deepcopy(obj)
        ref = self._ref(obj["kind"], obj["metadata"]["name"])
        self.calls.append(("replace", ref))
        old = self.store.get(ref)
        if old is None:
            raise ApiError(404, "NotFound", "not found", "PUT", "/")
        if self.conflicts.get(ref):
            self.conflicts[ref] -= 1
            self.touch(ref)
            raise ApiError(409, "Conflict", "the object has been modified", "PUT", "/")
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified; please apply your "
                           "changes to the latest version (rv %s != %s)"
                           % (rv, old["metadata"]["resourceVersion"]), "PUT", "/")
        obj.pop("status", None)
        self.store[ref] = self._server_fields(obj, old)
        return copy.deepcopy(self.store[ref])

    def touch(self, ref):
        """What a controller does: a status update that bumps resourceVersion."""
        obj = self.store[ref]
        obj["metadata"]["resourceVersion"] = self._next_rv()
        obj.setdefault("status", {})["observedGeneration"] = obj["metadata"].get("generation")

    def patch(self, kind, name, body, namespace=None, patch_type="merge", subresource=None):
        ref = self._ref(kind, name)
        self.calls.append(("patch", ref, subresource))
        if subresource == "scale":
            obj = self.store[ref]
            obj["spec"]["replicas"] = body["spec"]["replicas"]
            obj["metadata"]["resourceVersion"] = self._next_rv()
            return {"spec": {"replicas": body["spec"]["replicas"]}}
        raise NotImplementedError

    def scale(self, kind, name, namespace=None, replicas=None):
        return self.patch(kind, name, {"spec": {"replicas": int(replicas)}}, namespace,
                          subresource="scale")

    def delete(self, kind, name, namespace=None, propagation="Background", missing_ok=False):
        ref = self._ref(kind, name)
        self.calls.append(("delete", ref))
        if ref not in self.store:
            if missing_ok:
                return None
            raise ApiError(404, "NotFound", "not found", "DELETE", "/")
        return self.store.pop(ref)

    def delete_collection(self, kind, namespace=None, label_selector=None):
        self.calls.append(("delete_collection", kind, label_selector))
        self.pods_deleted.append(label_selector)
        return {}

    def pod_log(self, name, namespace=None, container=None, previous=False, tail_lines=None):
        return self.pod_logs.get(name, "OK\n")

    # -- test helpers --------------------------------------------------------------
    def objects(self, refs):
        return {ref: copy.deepcopy(self.store.get(ref)) for ref in refs}

    def dump(self):
        return json.dumps(self.store, sort_keys=True)


class Clock:
    """A clock the code under test reads (``time`` or the instance itself) and that its
    ``sleep`` moves: waits take no time."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return Clock(0.0)


@pytest.fixture
def api():
    return FakeApi(demo_manifests())


@pytest.fixture
def stack(api):
    """The demo stack as the API returns it: dict 'Kind/name' -> object."""
    return {ref: copy.deepcopy(obj) for ref, obj in api.store.items()}
