"""The SEO tool stack on a real cluster: setup, the seeds' own commands, monitoring, guards, teardown."""
import json
import urllib.parse

import pytest

from kubectl import Kube
from playbook import run_playbook

pytestmark = pytest.mark.lab
NAMESPACE = "seo-tool"
# Standalone monitoring runs in the drill namespace's control namespace (snapshot.control_namespace).
CONTROL = "opsdrill-ctl-" + NAMESPACE


@pytest.fixture(scope="module")
def stack(admin):
    result = run_playbook("setup.yml", f"drill_namespace={NAMESPACE}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return admin


def _proxy(kube, service, path, namespace=None):
    if namespace is None:
        namespace = CONTROL if service.split(":")[0] in ("prometheus", "alertmanager") else NAMESPACE
    return kube.run("get", "--raw", f"/api/v1/namespaces/{namespace}/services/{service}/proxy/{path.lstrip('/')}").stdout


@pytest.mark.parametrize("selector", ["app=backend-api", "tier=frontend", "tier=worker", "app=api-gateway"])
def test_seed_kubectl_selectors_list_running_pods(stack, selector):
    pods = stack.json("get", "pods", "-n", NAMESPACE, "-l", selector)["items"]
    assert pods, f"no pods for -l {selector}"
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert all(c["ready"] for c in pod["status"]["containerStatuses"]), pod["metadata"]["name"]


def test_every_deployment_available_with_requests_and_limits(stack):
    deployments = stack.json("get", "deployments", "-n", NAMESPACE)["items"]
    names = {d["metadata"]["name"] for d in deployments}
    assert {"backend-api", "api-gateway", "frontend", "worker", "postgres", "redis", "rank-api", "traffic"} <= names
    monitoring = stack.json("get", "deployments", "-n", CONTROL)["items"]
    # The control namespace: the monitoring and the incident desk, out of the team's reach.
    assert {d["metadata"]["name"] for d in monitoring} == {"prometheus", "alertmanager", "incident-desk"}
    assert not {"prometheus", "alertmanager", "incident-desk"} & names
    deployments += monitoring
    total_request_mib = 0
    for deployment in deployments:
        assert deployment["status"].get("availableReplicas", 0) == deployment["spec"]["replicas"], deployment["metadata"]["name"]
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            assert resources["requests"]["memory"].endswith("Mi")
            total_request_mib += int(resources["requests"]["memory"][:-2]) * deployment["spec"]["replicas"]
    assert total_request_mib <= 768


def test_gateway_health_and_metrics_answer(stack):
    health = json.loads(_proxy(stack, "api-gateway:80", "/health"))
    assert health["status"] == "ok"
    metrics = _proxy(stack, "api-gateway:80", "/metrics")
    assert "# TYPE seo_http_requests_total counter" in metrics
    assert 'seo_http_requests_total{service="api-gateway"' in metrics
    assert "seo_http_request_duration_seconds_bucket" in metrics and "seo_error_rate" in metrics


def test_seed_logs_grep_works(stack):
    logs = stack.run("logs", "-n", NAMESPACE, "-l", "app=api-gateway", "--tail=50").stdout.splitlines()
    assert logs, "no gateway logs"
    for line in logs:
        entry = json.loads(line)
        assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR")


def test_seed_alerts_loaded_and_quiet_at_steady_state(stack):
    rules = json.loads(_proxy(stack, "prometheus:9090", "/api/v1/rules"))
    alerting = {r["name"]: r for g in rules["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"}
    assert {"ServiceDown", "HighErrorRate"} <= set(alerting)
    assert alerting["ServiceDown"]["labels"] == {"severity": "critical", "service": "backend-api", "namespace": NAMESPACE}
    assert alerting["HighErrorRate"]["labels"]["service"] == "api-gateway"
    assert "0.2" in alerting["HighErrorRate"]["query"]
    alerts = json.loads(_proxy(stack, "prometheus:9090", "/api/v1/alerts"))["data"]["alerts"]
    assert [a for a in alerts if a["state"] == "firing"] == []


def test_prometheus_scrapes_every_service(stack):
    query = urllib.parse.quote('count by (job) (up{job!="reachability"} == 1)')
    wanted = {"backend-api", "api-gateway", "frontend", "worker", "rank-api", "traffic"}

    def scraped_jobs():
        answer = json.loads(_proxy(stack, "prometheus:9090", f"/api/v1/query?query={query}"))
        jobs = {r["metric"]["job"] for r in answer["data"]["result"]}
        return jobs if wanted <= jobs else None

    # A freshly (re)started Prometheus needs a DNS refresh and one scrape per target.
    assert stack.wait_for("every service's pods scraped", scraped_jobs, timeout=60, interval=2)


def test_trainees_query_the_monitoring_but_cannot_change_it(stack, lab):
    """Prometheus and Alertmanager run in the control namespace: a trainee queries them
    through the API server's service proxy, as on-call does, and is refused everything else
    there (the alert rules, the Deployments, the drill's objects)."""
    trainee = Kube(lab["kubectl"], next(iter(lab["trainee_kubeconfigs"].values())))
    alerts = json.loads(_proxy(trainee, "prometheus:9090", "/api/v1/alerts"))
    assert alerts["status"] == "success"
    assert json.loads(_proxy(trainee, "alertmanager:9093", "/api/v2/status"))["cluster"]["status"]
    for argv in (("get", "configmap", "prometheus-config", "-n", CONTROL),
                 ("annotate", "configmap", "prometheus-config", "-n", CONTROL, "drill-note=x"),
                 ("scale", "deployment", "prometheus", "-n", CONTROL, "--replicas=0"),
                 ("delete", "pods", "-n", CONTROL, "-l", "app=prometheus"),
                 ("get", "--raw", f"/api/v1/namespaces/{CONTROL}/services/opsdrill-none:80/proxy/"),
                 ("port-forward", "-n", CONTROL, "svc/prometheus", "19090:9090")):
        proc = trainee.run(*argv, check=False, timeout=30)
        assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), (argv, proc.stderr)
    # Nothing changed: the admin sees Prometheus as setup left it.
    prometheus = stack.json("get", "deployment", "prometheus", "-n", CONTROL)
    assert prometheus["spec"]["replicas"] == 1 and prometheus["status"].get("availableReplicas") == 1
    assert "drill-note" not in (stack.json("get", "configmap", "prometheus-config", "-n", CONTROL)
                                ["metadata"].get("annotations") or {})


def test_setup_check_mode_is_a_server_side_dry_run_with_nothing_to_change(stack):
    # kubernetes.core.k8s sends every rendered manifest with dryRun=All in check mode: the
    # real API server validates them, and a deployed stack has nothing left to change.
    result = run_playbook("setup.yml", f"drill_namespace={NAMESPACE}", check=True)
    assert result.returncode == 0, result.stdout[-4000:]
    recap = [line for line in result.stdout.splitlines() if line.startswith("localhost")][-1]
    assert "changed=0" in recap and "failed=0" in recap, recap


def test_setup_refuses_a_namespace_without_opt_in(stack):
    stack.run("create", "namespace", "opsdrill-not-opted-in", check=False)
    try:
        result = run_playbook("setup.yml", "drill_namespace=opsdrill-not-opted-in")
        assert result.returncode != 0
        assert "has not opted in" in result.stdout
        objects = stack.run("get", "all,configmaps,secrets", "-n", "opsdrill-not-opted-in", "-o", "name").stdout.split()
        assert [o for o in objects if "kube-root-ca" not in o] == []
        assert stack.run("get", "namespace", "opsdrill-ctl-opsdrill-not-opted-in", check=False).returncode != 0
    finally:
        stack.run("delete", "namespace", "opsdrill-not-opted-in", "--wait=false", check=False)


@pytest.mark.parametrize("namespace", ["default", "kube-system"])
def test_setup_refuses_system_namespaces(stack, namespace):
    result = run_playbook("setup.yml", f"drill_namespace={namespace}")
    assert result.returncode != 0
    assert "never touches" in result.stdout
    assert stack.run("get", "deployment", "backend-api", "-n", namespace, check=False).returncode != 0


def test_unreachable_cluster_error_names_kubeconfig_and_context(tmp_path):
    kubeconfig = tmp_path / "nowhere.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "nobody", "user": {"token": "x"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}]}))
    result = run_playbook("setup.yml", f"opsdrill_kubeconfig={kubeconfig}", "opsdrill_context=nowhere")
    assert result.returncode != 0
    assert str(kubeconfig) in result.stdout and "context nowhere" in result.stdout


def test_teardown_removes_what_setup_created_and_nothing_else(stack):
    namespace = "seo-tool-teardown-check"
    created = run_playbook("setup.yml", f"drill_namespace={namespace}")
    assert created.returncode == 0, created.stdout[-3000:]
    # The one cluster-wide object setup makes: the desk's TokenReview right.
    desk_binding = ("clusterrolebinding", "opsdrill-ctl-%s-incident-desk-auth" % namespace)
    assert stack.run("get", *desk_binding, check=False).returncode == 0
    removed = run_playbook("teardown.yml", f"drill_namespace={namespace}")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert stack.run("get", "namespace", namespace, check=False).returncode != 0
    assert stack.run("get", *desk_binding, check=False).returncode != 0
    # The control namespace (monitoring, drill state) goes too; its deletion is not waited for.
    assert stack.wait_for("control namespace gone", lambda: stack.run(
        "get", "namespace", "opsdrill-ctl-" + namespace, check=False).returncode != 0, timeout=90, interval=2)
    # The main stack is untouched.
    assert stack.json("get", "deployment", "backend-api", "-n", NAMESPACE)["status"]["availableReplicas"] >= 1


@pytest.mark.parametrize("bad, expected", [
    ("monitoring_mode=bogus", "monitoring_mode: 'bogus' is not one of: standalone, operator, external"),
    ("test_services_namspace=typo", "test_services_namspace: unknown variable for setup.yml "
                                    "(did you mean test_services_namespace?)"),
])
def test_bad_input_is_refused_before_anything_changes(stack, bad, expected):
    namespace = "seo-tool-bad-input"
    result = run_playbook("setup.yml", f"drill_namespace={namespace}", bad)
    assert result.returncode != 0
    assert expected in result.stdout
    assert stack.run("get", "namespace", namespace, check=False).returncode != 0
