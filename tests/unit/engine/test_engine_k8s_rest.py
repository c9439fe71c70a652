"""k8s_rest: paths, configuration, request building and error reporting (in-memory opener)."""

import io
import json
import urllib.error

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest as kr


def test_resource_paths():
    assert kr.resource_path("Deployment", "seo-tool", "backend-api") == \
        "/apis/apps/v1/namespaces/seo-tool/deployments/backend-api"
    assert kr.resource_path("Pod", "ns", "p", "log") == "/api/v1/namespaces/ns/pods/p/log"
    assert kr.resource_path("Lease", "ns") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
    assert kr.resource_path("Namespace", None, "seo-tool") == "/api/v1/namespaces/seo-tool"
    with pytest.raises(kr.K8sError, match="unsupported kind 'Ingress'; supported: ConfigMap"):
        kr.resource_path("Ingress", "ns")
    with pytest.raises(kr.K8sError, match="Secret is namespaced: give a namespace"):
        kr.resource_path("Secret", None, "x")


def write_kubeconfig(path, user, extra_cluster=None, context_ns="seo-tool"):
    cluster = {"server": "https://198.18.0.10:6443", "certificate-authority": "pki/ca.crt"}
    cluster.update(extra_cluster or {})
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
              "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u",
                                                       "namespace": context_ns}},
                           {"name": "other", "context": {"cluster": "c", "user": "u"}}],
              "clusters": [{"name": "c", "cluster": cluster}],
              "users": [{"name": "u", "user": user}]}
    path.write_text(json.dumps(config))
    return config


def test_kubeconfig_json_with_token(tmp_path):
    path = tmp_path / "admin.kubeconfig"
    write_kubeconfig(path, {"token": "abc"})
    settings = kr.load_kubeconfig(str(path))
    assert settings["server"] == "https://198.18.0.10:6443"
    assert settings["ca_file"] == str(tmp_path / "pki" / "ca.crt")
    assert settings["token"] == "abc" and settings["namespace"] == "seo-tool"
    assert kr.load_kubeconfig(str(path), "other")["namespace"] == "default"


def test_kubeconfig_yaml_and_token_file(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    path = tmp_path / "config"
    path.write_text("""
apiVersion: v1
kind: Config
current-context: lab
contexts:
- name: lab
  context: {cluster: c, user: u}
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true}
users:
- name: u
  user: {tokenFile: token}
""")
    settings = kr.load_kubeconfig(str(path))
    assert settings["token"] == "from-file" and settings["insecure"] is True


def test_kubeconfig_errors(tmp_path):
    path = tmp_path / "k"
    write_kubeconfig(path, {"exec": {"command": "aws"}})
    with pytest.raises(kr.ConfigError, match="exec/auth-provider plugin"):
        kr.load_kubeconfig(str(path))
    write_kubeconfig(path, {"token": "x"})
    with pytest.raises(kr.ConfigError, match="no context 'prod'; have: lab, other"):
        kr.load_kubeconfig(str(path), "prod")
    with pytest.raises(kr.ConfigError, match="does not exist"):
        kr.load_kubeconfig(str(tmp_path / "missing"))


def test_kubeconfig_from_env_variable(tmp_path, monkeypatch):
    path = tmp_path / "k"
    write_kubeconfig(path, {"token": "x"})
    monkeypatch.setenv("KUBECONFIG", str(path) + ":/nonexistent")
    assert kr.load_kubeconfig()["token"] == "x"


def test_in_cluster_settings(tmp_path):
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "namespace").write_text("opsdrill-system")
    settings = kr.in_cluster_settings(str(tmp_path), {"KUBERNETES_SERVICE_HOST": "198.18.16.1",
                                                      "KUBERNETES_SERVICE_PORT": "443"})
    assert settings == {"server": "https://198.18.16.1:443", "ca_file": str(tmp_path / "ca.crt"),
                        "token_file": str(tmp_path / "token"), "namespace": "opsdrill-system"}
    v6 = kr.in_cluster_settings(str(tmp_path), {"KUBERNETES_SERVICE_HOST": "fd00::1",
                                                "KUBERNETES_SERVICE_PORT": "443"})
    assert v6["server"] == "https://[fd00::1]:443"
    with pytest.raises(kr.ConfigError, match="KUBERNETES_SERVICE_HOST/PORT unset"):
        kr.in_cluster_settings(str(tmp_path), {})
    with pytest.raises(kr.ConfigError, match="automountServiceAccountToken"):
        kr.in_cluster_settings(str(tmp_path / "nope"), {"KUBERNETES_SERVICE_HOST": "h",
                                                        "KUBERNETES_SERVICE_PORT": "1"})


def test_client_certificate_needs_a_key():
    with pytest.raises(kr.ConfigError, match="needs a client key"):
        kr.Client("https://127.0.0.1:6443", insecure=True, cert_file="/x.crt")


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeOpener:
    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def open(self, req, timeout=None):
        self.requests.append(req)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(json.dumps(answer).encode())


def client_with(answers, **kwargs):
    client = kr.Client("http://127.0.0.1:8080", namespace="seo-tool", **kwargs)
    client._opener = FakeOpener(answers)
    return client, client._opener


def test_get_sends_token_and_decodes(tmp_path):
    client, opener = client_with([{"kind": "Deployment", "metadata": {"name": "x"}}], token="t0k")
    assert client.get("Deployment", "x")["metadata"]["name"] == "x"
    req = opener.requests[0]
    assert req.full_url == "http://127.0.0.1:8080/apis/apps/v1/namespaces/seo-tool/deployments/x"
    assert req.get_method() == "GET" and req.get_header("Authorization") == "Bearer t0k"


def test_token_file_is_read(tmp_path):
    token = tmp_path / "token"
    token.write_text("first\n")
    client, opener = client_with([{}], token_file=str(token))
    client.get("Pod", "p")
    assert opener.requests[0].get_header("Authorization") == "Bearer first"


def test_list_fills_kind_and_passes_selectors():
    client, opener = client_with([{"items": [{"metadata": {"name": "a"}}]}])
    items = client.list("Pod", label_selector="app=backend-api,tier=backend")
    assert items == [{"metadata": {"name": "a"}, "kind": "Pod", "apiVersion": "v1"}]
    assert opener.requests[0].full_url.endswith("/pods?labelSelector=app%3Dbackend-api%2Ctier%3Dbackend")


def test_writes():
    client, opener = client_with([{}, {}, {}, {}, {}])
    client.create({"kind": "ConfigMap", "metadata": {"name": "c"}})
    client.replace({"kind": "Lease", "metadata": {"name": "l", "namespace": "other"}})
    client.scale("Deployment", "postgres", replicas=0)
    client.delete("Service", "s")
    client.delete_collection("Pod", label_selector="app=x")
    methods = [(r.get_method(), r.full_url.split("8080")[1]) for r in opener.requests]
    assert methods == [
        ("POST", "/api/v1/namespaces/seo-tool/configmaps"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/other/leases/l"),
        ("PATCH", "/apis/apps/v1/namespaces/seo-tool/deployments/postgres/scale"),
        ("DELETE", "/api/v1/namespaces/seo-tool/services/s"),
        ("DELETE", "/api/v1/namespaces/seo-tool/pods?labelSelector=app%3Dx"),
    ]
    assert opener.requests[2].get_header("Content-type") == "application/merge-patch+json"
    assert json.loads(opener.requests[2].data) == {"spec": {"replicas": 0}}
    with pytest.raises(kr.K8sError, match="refusing to delete all"):
        client.delete_collection("Pod")


def http_error(code, body):
    return urllib.error.HTTPError("http://x", code, "Reason", {}, io.BytesIO(json.dumps(body).encode()))


def test_api_errors_carry_status_reason_and_message():
    status = {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
              "message": 'deployments.apps "ghost" not found'}
    client, _calls = client_with([http_error(404, status), http_error(404, status)])
    with pytest.raises(kr.ApiError) as err:
        client.get("Deployment", "ghost")
    assert err.value.status == 404 and err.value.not_found
    assert str(err.value) == ('HTTP 404 NotFound: deployments.apps "ghost" not found '
                              "(GET /apis/apps/v1/namespaces/seo-tool/deployments/ghost)")
    assert client.get_or_none("Deployment", "ghost") is None


def test_conflict_and_missing_ok():
    client, _calls = client_with([http_error(409, {"reason": "Conflict", "message": "modified"}),
                                  http_error(404, {"reason": "NotFound", "message": "gone"})])
    with pytest.raises(kr.ApiError) as err:
        client.replace({"kind": "Service", "metadata": {"name": "s"}})
    assert err.value.conflict
    assert client.delete("Service", "s", missing_ok=True) is None


def test_unreachable_server():
    client, _calls = client_with([urllib.error.URLError(ConnectionRefusedError(111, "refused"))])
    with pytest.raises(kr.ApiError, match=r"API server unreachable: http://127.0.0.1:8080: .*refused"):
        client.get("Pod", "p")


def test_non_json_error_body():
    err = urllib.error.HTTPError("http://x", 502, "Bad Gateway", {}, io.BytesIO(b"<html>proxy</html>"))
    client, _calls = client_with([err])
    with pytest.raises(kr.ApiError, match=r"HTTP 502 Bad Gateway: <html>proxy</html>"):
        client.get("Pod", "p")


def test_a_proxied_service_answering_a_json_string():
    # Alertmanager through the service proxy answers a 400 with a JSON string, not a Status.
    err = urllib.error.HTTPError("http://x", 400, "Bad Request", {}, io.BytesIO(b'"end time can\'t be in the past"'))
    client, _calls = client_with([err])
    with pytest.raises(kr.ApiError, match=r"HTTP 400 Bad Request: \"end time can't be in the past\""):
        client.request("POST", "/api/v1/namespaces/x/services/alertmanager:9093/proxy/api/v2/silences", body={})


def test_from_env_explains_both_failures(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    with pytest.raises(kr.ConfigError, match="no cluster configuration: not in a cluster.*does not exist"):
        kr.Client.from_env()
