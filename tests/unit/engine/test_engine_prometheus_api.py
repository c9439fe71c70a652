"""Where the engine asks Prometheus: the standalone monitoring lives in the control namespace."""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.filter import control_namespace as control_filter
from ansible_collections.opsdrill.drills.plugins.module_utils import prometheus_api
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot


@pytest.mark.parametrize("given, expected", [
    ("prometheus:9090", ("opsdrill-ctl-seo-tool", "prometheus", "9090")),
    ("prometheus", ("opsdrill-ctl-seo-tool", "prometheus", "80")),
    ("monitoring/kube-prometheus:9090", ("monitoring", "kube-prometheus", "9090")),
])
def test_service_of(given, expected):
    assert prometheus_api.service_of("seo-tool", given) == expected


def test_prometheus_get_goes_through_the_control_namespaces_service_proxy(monkeypatch):
    asked = []

    class Client:
        @staticmethod
        def get_status(path, query=None):
            asked.append((path, query))
            return 200, "{}"

    assert prometheus_api.prometheus_get(Client(), "seo-tool", "prometheus:9090", "/api/v1/alerts") == (200, "{}")
    assert asked == [("/api/v1/namespaces/opsdrill-ctl-seo-tool/services/prometheus:9090/proxy/api/v1/alerts", None)]


def test_the_filter_is_the_engines_control_namespace():
    long_name = "n" * 60
    filters = control_filter.FilterModule().filters()
    assert filters["control_namespace"]("seo-tool") == snapshot.control_namespace("seo-tool") == "opsdrill-ctl-seo-tool"
    assert filters["control_namespace"](long_name) == snapshot.control_namespace(long_name)
    assert len(filters["control_namespace"](long_name)) <= 63
    with pytest.raises(AnsibleFilterError, match="expects a drill namespace"):
        filters["control_namespace"]("")


def test_the_cluster_views_queries_go_to_the_control_namespace():
    """detect.ClusterView (symptom and alert checks) asks the same Prometheus as the modules."""
    from ansible_collections.opsdrill.drills.plugins.module_utils import detect

    class Client(k8s_rest.Client):
        paths = []

        def __init__(self):  # pylint: disable=super-init-not-called
            pass

        def request(self, method, path, query=None, raw=False):
            self.paths.append((method, path, query))
            return '{"status": "success", "data": {"alerts": []}}'

    client = Client()
    view = detect.ClusterView(client, "seo-tool", "prometheus:9090")
    assert view.prometheus_get("/api/v1/alerts") == (200, {"status": "success", "data": {"alerts": []}})
    other = detect.ClusterView(client, "seo-tool", "monitoring/prom:9090")
    other.prometheus_get("/api/v1/query", {"query": "up"})
    assert client.paths == [
        ("GET", "/api/v1/namespaces/opsdrill-ctl-seo-tool/services/prometheus:9090/proxy/api/v1/alerts", None),
        ("GET", "/api/v1/namespaces/monitoring/services/prom:9090/proxy/api/v1/query", {"query": "up"})]
