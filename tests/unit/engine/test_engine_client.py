"""The controller's cluster client: where its credentials come from, through the official
kubernetes package (a real exec plugin runs here), and the kubeconfig it hands the watchdog."""
import base64
import json
import os
import socket
import stat
import sys

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest

CA_PEM = b"-----BEGIN CERTIFICATE-----\nnot-checked-before-a-request\n-----END CERTIFICATE-----\n"


@pytest.fixture(name="clean_env")
def fixture_clean_env(monkeypatch):
    for name in ("K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY",
                 "K8S_AUTH_SSL_CA_CERT", "K8S_AUTH_VERIFY_SSL", "KUBERNETES_SERVICE_HOST", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _exec_kubeconfig(tmp_path, token, server="https://198.18.0.1:6443"):
    """A kubeconfig whose user is an exec plugin: a script printing an ExecCredential."""
    plugin = tmp_path / "credential.py"
    plugin.write_text("import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
                      "'kind': 'ExecCredential', 'status': {'token': %r}}))\n" % token)
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": str(tmp_path / "ca.crt")}}],
        "users": [{"name": "exec-user", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
            "args": [str(plugin)], "interactiveMode": "Never"}}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "exec-user"}}],
    }
    path = tmp_path / "exec.kubeconfig"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("env, option, expected_kind", [
    ({"K8S_AUTH_KUBECONFIG": "/k/env", "K8S_AUTH_HOST": "https://h"}, "/k/option", "kubeconfig"),
    ({"K8S_AUTH_KUBECONFIG": "/k/env", "K8S_AUTH_HOST": "https://h"}, None, "kubeconfig"),
    ({"K8S_AUTH_HOST": "https://h", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, None, "host"),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": "/k/default"}, None, "in-cluster"),
    ({"KUBECONFIG": "/k/a:/k/b"}, None, "default-kubeconfig"),
])
def test_the_first_credential_source_that_is_set_wins(env, option, expected_kind):
    kind, details = engine_client.credential_source(option, None, env)
    assert kind == expected_kind
    if kind == "kubeconfig":
        assert details["path"] == (option or env["K8S_AUTH_KUBECONFIG"])
    if kind == "default-kubeconfig":
        assert details["path"] == "/k/a"


def test_awx_variables_verify_tls_unless_told_not_to():
    env = {"K8S_AUTH_HOST": "https://h/", "K8S_AUTH_API_KEY": "t", "K8S_AUTH_SSL_CA_CERT": "/ca"}
    assert engine_client.credential_source(None, None, env)[1] == {
        "host": "https://h", "api_key": "t", "ca_cert": "/ca", "verify_ssl": True}
    env["K8S_AUTH_VERIFY_SSL"] = "False"
    assert engine_client.credential_source(None, None, env)[1]["verify_ssl"] is False


def test_an_exec_plugin_kubeconfig_authenticates_with_the_token_the_plugin_prints(tmp_path, clean_env):
    path = _exec_kubeconfig(tmp_path, "exec-token-1")
    client = engine_client.connect(str(path), check=False)
    assert client.server == "https://198.18.0.1:6443"
    assert client.configuration.get_api_key_with_prefix("authorization") == "Bearer exec-token-1"
    # The watchdog's kubeconfig, read back by the standard-library client it runs.
    handed = tmp_path / "watchdog.json"
    handed.write_text(json.dumps(engine_client.resolved_kubeconfig(client)))
    settings = k8s_rest.load_kubeconfig(str(handed))
    assert settings["server"] == "https://198.18.0.1:6443"
    assert settings["token"] == "exec-token-1"
    assert base64.b64decode(settings["ca_data"]) == CA_PEM


def test_awx_credential_variables_alone_configure_the_client(tmp_path, clean_env):
    (tmp_path / "ca.crt").write_bytes(CA_PEM)
    clean_env.setenv("K8S_AUTH_HOST", "https://198.18.0.9:6443")
    clean_env.setenv("K8S_AUTH_API_KEY", "awx-token")
    clean_env.setenv("K8S_AUTH_SSL_CA_CERT", str(tmp_path / "ca.crt"))
    client = engine_client.connect(check=False)
    assert (client.server, client.source) == ("https://198.18.0.9:6443", "host")
    assert client.configuration.get_api_key_with_prefix("authorization") == "Bearer awx-token"
    assert client.configuration.ssl_ca_cert == str(tmp_path / "ca.crt")


def test_a_missing_kubeconfig_is_named(tmp_path, clean_env):
    missing = tmp_path / "nope.kubeconfig"
    with pytest.raises(engine_client.ClusterUnreachable, match="kubeconfig %s, context ops" % missing):
        engine_client.connect(str(missing), "ops")


def test_an_unreachable_host_is_named_and_raises_one_error_type(clean_env):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean_env.setenv("K8S_AUTH_HOST", "http://127.0.0.1:%d" % port)
    with pytest.raises(engine_client.ClusterUnreachable, match=r"host http://127.0.0.1:%d \(K8S_AUTH_HOST\)" % port):
        engine_client.connect(timeout=2)
    client = engine_client.connect(timeout=2, check=False)
    with pytest.raises(k8s_rest.ApiError) as raised:
        client.get("Namespace", "seo-tool")
    assert raised.value.status == 0
    assert client.get_status("/api/v1/namespaces/x/services/y:80/proxy/health")[0] == 0


def test_the_watchdog_kubeconfig_is_private(tmp_path, clean_env):
    from ansible_collections.opsdrill.drills.plugins.modules import drill_deadman
    client = engine_client.connect(str(_exec_kubeconfig(tmp_path, "t2")), check=False)
    path = drill_deadman._watchdog_kubeconfig(str(tmp_path / "wd"), client)  # pylint: disable=protected-access
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(open(path, encoding="utf-8").read())["users"][0]["user"]["token"] == "t2"


def test_both_clients_read_an_error_answer_alike():
    """A Status (or a proxied service's JSON) gives reason and message, whatever the transport."""
    status = json.dumps({"kind": "Status", "reason": "Forbidden", "message": "secrets is forbidden"})
    error = k8s_rest.error_from_answer(403, "Forbidden", status, "GET", "/api/v1/secrets")
    assert (error.status, error.reason, error.message, error.body["kind"]) == (403, "Forbidden", "secrets is forbidden",
                                                                               "Status")
    proxied = k8s_rest.error_from_answer(503, "Service Unavailable", '{"message": "desk starting"}', "GET", "/x")
    assert proxied.message == "desk starting" and proxied.body == {"message": "desk starting"}
    text = k8s_rest.error_from_answer(502, "Bad Gateway", "upstream down\n", "GET", "/x")
    assert (text.message, text.body) == ("upstream down", None)


def test_service_proxy_paths():
    assert k8s_rest.service_proxy_path("ctl", "prometheus", "9090", "/api/v1/alerts") == \
        "/api/v1/namespaces/ctl/services/prometheus:9090/proxy/api/v1/alerts"
    assert k8s_rest.service_proxy_path("ctl", "incident-desk", 80, "/api/drills", scheme="http") == \
        "/api/v1/namespaces/ctl/services/http:incident-desk:80/proxy/api/drills"
