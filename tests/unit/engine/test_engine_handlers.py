"""Fault handlers on the demo stack's objects as the API returns them."""

import base64
import copy

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import fault_handlers as fh
from ansible_collections.opsdrill.drills.plugins.module_utils.fault_handlers import HandlerError

CTX = {"namespace": "seo-tool", "now": "2026-11-22T17:30:00Z", "drill_id": "d1"}


def run(handler, stack, ref, **params):
    return fh.run_handler(handler, stack, ref, params, CTX)


def only_replace(ops):
    assert len(ops) == 1 and ops[0]["op"] == "replace"
    return ops[0]["object"]


def env_of(dep, container=0):
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in dep["spec"]["template"]["spec"]["containers"][container]["env"]}


def ctr(dep, index=0):
    return dep["spec"]["template"]["spec"]["containers"][index]


def test_set_env_replaces_and_adds(stack):
    dep = only_replace(run("set_env", stack, "Deployment/backend-api",
                           env={"SEO_LOG_LEVEL": "verbose", "SEO_DB_PORT": "6543"},
                           strategy="Recreate", change_cause="why"))
    env = env_of(dep)
    assert env["SEO_LOG_LEVEL"] == "verbose" and env["SEO_DB_PORT"] == "6543"
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == "why"
    # the live object's resourceVersion stays for an optimistic PUT
    assert dep["metadata"]["resourceVersion"] == stack["Deployment/backend-api"]["metadata"][
        "resourceVersion"]


def test_handlers_never_modify_their_input(stack):
    before = copy.deepcopy(stack)
    run("set_env", stack, "Deployment/backend-api", env={"A": "1"})
    run("secret_remove_key", stack, "Secret/backend-api-credentials", key="db-password")
    run("service_selector", stack, "Service/backend-api", add={"track": "stable"})
    assert stack == before


def test_set_env_replaces_value_from(stack):
    dep = only_replace(run("set_env", stack, "Deployment/backend-api", env={"SEO_DB_PASSWORD": "x"}))
    item = [e for e in ctr(dep)["env"] if e["name"] == "SEO_DB_PASSWORD"][0]
    assert item == {"name": "SEO_DB_PASSWORD", "value": "x"}


def test_set_env_if_absent(stack):
    dep = only_replace(run("set_env", stack, "Deployment/api-gateway",
                           env_if_absent={"SEO_REDIS_HOST": "other", "NEW": "1"}))
    assert env_of(dep)["SEO_REDIS_HOST"] == "redis" and env_of(dep)["NEW"] == "1"


def test_container_by_name_and_unknown_container(stack):
    dep = copy.deepcopy(stack["Deployment/backend-api"])
    side = copy.deepcopy(ctr(dep))
    side["name"] = "sidecar"
    side["env"] = []
    dep["spec"]["template"]["spec"]["containers"].insert(0, side)
    objects = {"Deployment/backend-api": dep}
    out = only_replace(run("set_env", objects, "Deployment/backend-api",
                           container="backend-api", env={"X": "1"}))
    assert env_of(out, 1)["X"] == "1" and "X" not in env_of(out, 0)
    out = only_replace(run("set_env", objects, "Deployment/backend-api", env={"X": "1"}))
    assert env_of(out, 0)["X"] == "1"  # default: the first container
    with pytest.raises(HandlerError, match="no container 'app'; containers: sidecar, backend-api"):
        run("set_env", objects, "Deployment/backend-api", container="app", env={"X": "1"})


def test_remove_env(stack):
    dep = only_replace(run("remove_env", stack, "Deployment/backend-api", names=["SEO_DB_HOST"]))
    assert "SEO_DB_HOST" not in env_of(dep)
    with pytest.raises(HandlerError, match="SEO_NOPE not set in container backend-api"):
        run("remove_env", stack, "Deployment/backend-api", names=["SEO_NOPE"])


def test_rename_env_keeps_position_and_value(stack):
    dep = only_replace(run("rename_env", stack, "Deployment/backend-api",
                           **{"from": "SEO_DB_HOST", "to": "SEO_DB_HOTS"}))
    names = [e["name"] for e in ctr(dep)["env"]]
    old = [e["name"] for e in ctr(stack["Deployment/backend-api"])["env"]]
    assert names[old.index("SEO_DB_HOST")] == "SEO_DB_HOTS"
    assert env_of(dep)["SEO_DB_HOTS"] == "postgres"
    with pytest.raises(HandlerError, match="SEO_X not set"):
        run("rename_env", stack, "Deployment/backend-api", **{"from": "SEO_X", "to": "SEO_Y"})


def test_append_env_list(stack):
    dep = only_replace(run("append_env_list", stack, "Deployment/api-gateway",
                           name="SEO_BACKEND_URLS", item="http://backend-api-canary"))
    assert env_of(dep)["SEO_BACKEND_URLS"] == "http://backend-api,http://backend-api-canary"
    with pytest.raises(HandlerError, match="valueFrom"):
        run("append_env_list", stack, "Deployment/api-gateway", name="SEO_BACKEND_API_KEY",
            item="x")


def test_patch_resources_takes_the_request_down_with_the_limit(stack):
    dep = only_replace(run("patch_container_resources", stack, "Deployment/backend-api",
                           limits={"memory": "12Mi"}))
    assert ctr(dep)["resources"] == {"limits": {"cpu": "500m", "memory": "12Mi"},
                                     "requests": {"cpu": "50m", "memory": "12Mi"}}
    dep = only_replace(run("patch_container_resources", stack, "Deployment/backend-api",
                           limits={"cpu": "10m"}))
    assert ctr(dep)["resources"]["requests"]["cpu"] == "10m"
    assert ctr(dep)["resources"]["requests"]["memory"] == "48Mi"


def test_patch_resources_rejects_non_quantities(stack):
    with pytest.raises(HandlerError, match="not a quantity"):
        run("patch_container_resources", stack, "Deployment/backend-api", limits={"memory": "lots"})


def test_patch_probes(stack):
    dep = only_replace(run("patch_probes", stack, "Deployment/backend-api", probes=["readiness"],
                           timeoutSeconds=1, failureThreshold=1, successThreshold=3))
    probe = ctr(dep)["readinessProbe"]
    assert probe["timeoutSeconds"] == 1 and probe["successThreshold"] == 3
    assert probe["httpGet"]["path"] == "/health"
    assert ctr(dep)["livenessProbe"] == ctr(stack["Deployment/backend-api"])["livenessProbe"]
    with pytest.raises(HandlerError, match="successThreshold must be 1 for liveness"):
        run("patch_probes", stack, "Deployment/backend-api", probes=["liveness"],
            successThreshold=3)
    with pytest.raises(HandlerError, match="none of the probes startup"):
        run("patch_probes", stack, "Deployment/backend-api", probes=["startup"], timeoutSeconds=1)
    dep = only_replace(run("patch_probes", stack, "Deployment/backend-api", probes=["startup"],
                           timeoutSeconds=1, create_http={"path": "/livez", "port": 8080}))
    assert ctr(dep)["startupProbe"]["httpGet"]["path"] == "/livez"


def test_set_container_arg(stack):
    dep = only_replace(run("set_container_arg", stack, "Deployment/redis",
                           option="--maxmemory", value="256kb"))
    args = ctr(dep)["args"]
    assert args[args.index("--maxmemory") + 1] == "256kb"
    assert len(args) == len(ctr(stack["Deployment/redis"])["args"])
    dep = only_replace(run("set_container_arg", stack, "Deployment/redis",
                           option="--maxmemory-policy", value="allkeys-lru"))
    assert ctr(dep)["args"][-2:] == ["--maxmemory-policy", "allkeys-lru"]
    with pytest.raises(HandlerError, match="is 24mb already"):
        run("set_container_arg", stack, "Deployment/redis", option="--maxmemory", value="24mb")
    # no args: the command carries the options
    dep = only_replace(run("set_container_arg", stack, "Deployment/backend-api",
                           option="--role", value="backend-api"))
    assert ctr(dep)["command"][-2:] == ["--role", "backend-api"]


def test_set_node_selector(stack):
    dep = only_replace(run("set_node_selector", stack, "Deployment/redis",
                           node_selector={"storage-tier": "nvme-ultra"}, strategy="Recreate"))
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"storage-tier": "nvme-ultra"}


def test_rollout_restart_sets_restarted_at(stack):
    dep = only_replace(run("rollout_restart", stack, "Deployment/api-gateway"))
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["kubectl.kubernetes.io/restartedAt"] == CTX["now"]
    assert ann["opsdrill.io/code-sha256"]  # kept


def test_scale(stack):
    assert run("scale", stack, "Deployment/postgres", replicas=0) == [
        {"op": "scale", "kind": "Deployment", "name": "postgres", "replicas": 0}]
    with pytest.raises(HandlerError, match="already has 1 replicas"):
        run("scale", stack, "Deployment/postgres", replicas=1)
    with pytest.raises(HandlerError, match="integer >= 0"):
        run("scale", stack, "Deployment/postgres", replicas="0")


def test_add_volume_size_limit(stack):
    dep = only_replace(run("add_volume_size_limit", stack, "Deployment/api-gateway",
                           mount_path="/data", size_limit="64Ki", medium="Memory"))
    vol = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"][0]
    assert vol["emptyDir"] == {"sizeLimit": "64Ki", "medium": "Memory"}
    with pytest.raises(HandlerError, match="mounts nothing at /var/data; mounts: /app, /data"):
        run("add_volume_size_limit", stack, "Deployment/api-gateway", mount_path="/var/data",
            size_limit="1Mi")
    with pytest.raises(HandlerError, match="volume code is not an emptyDir"):
        run("add_volume_size_limit", stack, "Deployment/api-gateway", mount_path="/app",
            size_limit="1Mi")


def test_add_pvc_volume_creates_the_claim_first(stack):
    ops = run("add_pvc_volume", stack, "Deployment/backend-api", claim_name="backend-api-cache",
              storage_class="fast-ssd-retain", size="1Gi", mount_path="/var/cache/seo",
              strategy="Recreate")
    assert [o["op"] for o in ops] == ["create", "replace"]
    pvc = ops[0]["object"]
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["namespace"] == "seo-tool"
    assert pvc["spec"]["storageClassName"] == "fast-ssd-retain"
    assert pvc["metadata"]["labels"]["opsdrill.io/created-by"] == "fault"
    dep = ops[1]["object"]
    assert {"name": "backend-api-cache", "persistentVolumeClaim": {"claimName": "backend-api-cache"}} \
        in dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "backend-api-cache", "mountPath": "/var/cache/seo"} in ctr(dep)["volumeMounts"]
    assert fh.created_refs(ops) == ["PersistentVolumeClaim/backend-api-cache"]


def test_secret_file_mode(stack):
    dep = only_replace(run("secret_file_mode", stack, "Deployment/backend-api",
                           secret="backend-api-credentials", key="db-password",
                           mount_path="/etc/seo/credentials", file_env="SEO_DB_PASSWORD_FILE",
                           drop_env=["SEO_DB_PASSWORD"], mode="0400", volume_name="db-credentials"))
    spec = dep["spec"]["template"]["spec"]
    vol = [v for v in spec["volumes"] if v["name"] == "db-credentials"][0]
    assert vol["secret"] == {"secretName": "backend-api-credentials", "defaultMode": 0o400}
    assert {"name": "db-credentials", "mountPath": "/etc/seo/credentials", "readOnly": True} \
        in ctr(dep)["volumeMounts"]
    env = env_of(dep)
    assert env["SEO_DB_PASSWORD_FILE"] == "/etc/seo/credentials/db-password"
    assert "SEO_DB_PASSWORD" not in env and "SEO_API_KEY" in env
    # uid 10001 set by the pod already: nothing added; no fsGroup to read the file with
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}
    assert "runAsUser" not in ctr(dep)["securityContext"]


def test_secret_file_mode_makes_root_containers_non_root_and_drops_fs_group(stack):
    dep = copy.deepcopy(stack["Deployment/backend-api"])
    dep["spec"]["template"]["spec"]["securityContext"] = {"fsGroup": 2000}
    out = only_replace(fh.run_handler("secret_file_mode", {"Deployment/backend-api": dep},
                                      "Deployment/backend-api",
                                      {"secret": "backend-api-credentials", "key": "db-password",
                                       "mount_path": "/s", "file_env": "F", "mode": 256}, CTX))
    spec = out["spec"]["template"]["spec"]
    assert "securityContext" not in spec
    assert ctr(out)["securityContext"]["runAsUser"] == 10001


def test_release(stack):
    dep = only_replace(run("release", stack, "Deployment/api-gateway", version="1.5.0",
                           version_env=["SEO_RELEASE", "SEO_VERSION"], change_cause="gw 1.5.0",
                           env={"SEO_FAULT_ERROR_SHARE": "0.25"},
                           env_if_absent={"SEO_REDIS_HOST": "elsewhere"}))
    env = env_of(dep)
    assert env["SEO_RELEASE"] == "1.5.0" and env["SEO_VERSION"] == "1.5.0"
    assert env["SEO_FAULT_ERROR_SHARE"] == "0.25" and env["SEO_REDIS_HOST"] == "redis"
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == "gw 1.5.0"
    assert dep["metadata"]["labels"]["app.kubernetes.io/version"] == "1.5.0"
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.5.0"
    assert dep["spec"]["selector"] == stack["Deployment/api-gateway"]["spec"]["selector"]
    with pytest.raises(HandlerError, match="give version and change_cause"):
        run("release", stack, "Deployment/api-gateway", version="1")
    with pytest.raises(HandlerError, match="part of the selector"):
        run("release", stack, "Deployment/api-gateway", version="1", change_cause="x",
            version_label="app")


def test_release_requires_a_memory_limit_when_asked(stack):
    dep = copy.deepcopy(stack["Deployment/api-gateway"])
    ctr(dep)["resources"] = {}
    with pytest.raises(HandlerError, match="no memory limit"):
        fh.run_handler("release", {"Deployment/api-gateway": dep}, "Deployment/api-gateway",
                       {"version": "1", "change_cause": "x", "require_memory_limit": True}, CTX)


def test_secret_remove_and_set_key(stack):
    secret = only_replace(run("secret_remove_key", stack, "Secret/backend-api-credentials",
                              key="db-password"))
    assert set(secret["data"]) == {"api-key"}
    with pytest.raises(HandlerError, match="no key 'nope'; keys: api-key, db-password"):
        run("secret_remove_key", stack, "Secret/backend-api-credentials", key="nope")
    secret = only_replace(run("secret_set_key", stack, "Secret/api-gateway-credentials",
                              key="backend-api-key", value="rotated"))
    assert base64.b64decode(secret["data"]["backend-api-key"]) == b"rotated"
    with pytest.raises(HandlerError, match="already has that value"):
        run("secret_set_key", stack, "Secret/api-gateway-credentials", key="backend-api-key",
            value="opsdrill-demo-key")
    with pytest.raises(HandlerError, match="works on Secret, not Deployment"):
        run("secret_set_key", stack, "Deployment/api-gateway", key="k", value="v")


def test_service_selector(stack):
    svc = only_replace(run("service_selector", stack, "Service/backend-api", add={"track": "stable"}))
    assert svc["spec"]["selector"] == {"app": "backend-api", "track": "stable"}
    svc = only_replace(run("service_selector", stack, "Service/postgres", set={"app": "redis"}))
    assert svc["spec"]["selector"] == {"app": "redis"}
    assert svc["spec"]["clusterIP"] == stack["Service/postgres"]["spec"]["clusterIP"]
    with pytest.raises(HandlerError, match="selector unchanged"):
        run("service_selector", stack, "Service/postgres", set={"app": "postgres"})


def test_service_target_port(stack):
    svc = only_replace(run("service_target_port", stack, "Service/redis", target_port=6380))
    assert svc["spec"]["ports"][0]["targetPort"] == 6380
    svc = only_replace(run("service_target_port", stack, "Service/postgres", port="postgres",
                           target_port="redis"))
    assert svc["spec"]["ports"][0]["targetPort"] == "redis"
    with pytest.raises(HandlerError, match="no port 9999; ports: postgres"):
        run("service_target_port", stack, "Service/postgres", port=9999, target_port=1)


def test_create_service(stack):
    ops = run("create_service", stack, "Service/backend-api-canary", name="backend-api-canary",
              selector={"app": "backend-api", "track": "canary"})
    svc = ops[0]["object"]
    assert ops[0]["op"] == "create" and svc["spec"]["selector"]["track"] == "canary"
    assert svc["metadata"]["labels"]["opsdrill.io/created-by"] == "fault"
    with pytest.raises(HandlerError, match="exists already"):
        run("create_service", stack, "Service/redis", name="redis", selector={"app": "x"})


def test_delete_pods_uses_the_workload_selector(stack):
    assert run("delete_pods", stack, "Deployment/backend-api") == [
        {"op": "delete_pods", "selector": "app=backend-api"}]
    assert run("delete_pods", stack, "Deployment/x", selector="a=b") == [
        {"op": "delete_pods", "selector": "a=b"}]


def test_unknown_handler_and_missing_object(stack):
    with pytest.raises(HandlerError, match="unknown handler 'nope'; handlers: add_pvc_volume"):
        fh.run_handler("nope", stack, "Deployment/x")
    with pytest.raises(HandlerError, match="Deployment/ghost: object not in the snapshot"):
        run("set_env", stack, "Deployment/ghost", env={"A": "1"})


def test_plan_folds_replaces_and_orders_ops(stack):
    steps = [
        {"handler": "patch_container_resources", "object": "Deployment/backend-api",
         "params": {"limits": {"cpu": "10m"}, "strategy": "Recreate"}},
        {"handler": "patch_probes", "object": "Deployment/backend-api",
         "params": {"probes": ["readiness"], "timeoutSeconds": 1}},
        {"handler": "delete_pods", "object": "Deployment/backend-api", "params": {}},
        {"handler": "create_service", "object": "Service/c",
         "params": {"name": "c", "selector": {"a": "b"}}},
    ]
    ops = fh.plan(steps, stack, CTX)
    assert [o["op"] for o in ops] == ["create", "replace", "delete_pods"]
    dep = ops[1]["object"]
    assert ctr(dep)["resources"]["limits"]["cpu"] == "10m"
    assert ctr(dep)["readinessProbe"]["timeoutSeconds"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_plan_error_names_the_step(stack):
    with pytest.raises(HandlerError, match=r"step 2 \(remove_env on Deployment/backend-api\)"):
        fh.plan([{"handler": "set_env", "object": "Deployment/backend-api", "params": {"env": {"A": "1"}}},
                 {"handler": "remove_env", "object": "Deployment/backend-api",
                  "params": {"names": ["NOPE"]}}], stack, CTX)


@pytest.mark.parametrize("key", catalog.load().keys())
def test_every_catalog_fault_plans_on_the_demo_stack(stack, key):
    entry = catalog.lookup(*key.split("/"))
    objects = {"%s/%s" % (t["kind"], t["name"]): stack["%s/%s" % (t["kind"], t["name"])]
               for t in entry["touches"]}
    ops = fh.plan(entry["steps"], objects, CTX)
    assert ops
    touched = set(objects)
    for op in ops:
        if op["op"] == "replace":
            ref = "%s/%s" % (op["object"]["kind"], op["object"]["metadata"]["name"])
            assert ref in touched
            assert op["object"] != stack[ref], "%s: replace without a change" % key
