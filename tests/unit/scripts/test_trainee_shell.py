"""Unit tests for scripts/trainee_shell.py: arguments, lab.json and kubeconfig reading, the
hosts file, the request path mapping, headers and API-server errors, and the TLS proxy
end to end against a fake API server on loopback (no lab needed)."""

from __future__ import annotations

import http.client
import http.server
import importlib.util
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "trainee_shell.py"
_spec = importlib.util.spec_from_file_location("trainee_shell", SCRIPT)
ts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ts)


# ----------------------------------------------------------------------------- arguments

def test_script_is_executable_and_documented():
    assert os.access(SCRIPT, os.X_OK)
    assert "make shell TRAINEE=trainee-1" in ts.__doc__


def test_defaults():
    args = ts.parse_args(["--trainee", "trainee-1"])
    assert (args.trainee, args.namespace, args.lab_json, args.host, args.command) == (
        "trainee-1", "seo-tool", "/var/lib/opsdrill-lab/lab.json", "api.seo-tool.com", None)
    assert args.deploy_repo_base == "~/.local/share/opsdrill/deploy-repo"


def test_command_and_options():
    args = ts.parse_args(["--trainee", "trainee-2", "--namespace", "opsdrill-x", "--host", "API.Example.COM.",
                          "-c", "curl -I https://api.example.com/health"])
    assert args.namespace == "opsdrill-x"
    assert args.host == "api.example.com"
    assert args.command == "curl -I https://api.example.com/health"


def test_trainee_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        ts.parse_args([])
    assert exc.value.code == 2
    assert "--trainee" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--namespace", "Seo_Tool"), ("--namespace", "-x"),
                                           ("--namespace", "a" * 64), ("--host", "no spaces.com x"),
                                           ("--host", "localhost"), ("--host", "a..b.com")])
def test_bad_values_name_the_option(capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        ts.parse_args(["--trainee", "trainee-1", "%s=%s" % (option, value)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument %s" % option in err and "e.g." in err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        ts.parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--trainee", "--namespace", "--lab-json", "--deploy-repo-base", "--host", "-c COMMAND"):
        assert option in out


# ----------------------------------------------------------------------------- lab.json

def test_missing_lab_json_says_how_to_start_the_lab(tmp_path):
    with pytest.raises(ts.ShellError, match=r"--lab-json: .* does not exist: the lab is not running. Start it "
                                            r"with `make lab`"):
        ts.load_lab(str(tmp_path / "lab.json"))


def test_main_reports_errors_with_status_2(tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("run() checks for root first")
    assert ts.main(["--trainee", "trainee-1", "--lab-json", str(tmp_path / "lab.json"), "-c", "true"]) == 2
    assert "trainee_shell: --lab-json:" in capsys.readouterr().err


@pytest.mark.parametrize("text, match", [
    ("{", "cannot read"),
    ('{"kubectl": "k"}', "has no admin_kubeconfig, trainee_kubeconfigs"),
])
def test_bad_lab_json(tmp_path, text, match):
    path = tmp_path / "lab.json"
    path.write_text(text)
    with pytest.raises(ts.ShellError, match=match):
        ts.load_lab(str(path))


def test_unknown_trainee_lists_the_labs_trainees():
    lab = {"trainee_kubeconfigs": {"trainee-2": "/b", "trainee-1": "/a"}}
    assert ts.trainee_kubeconfig(lab, "trainee-1") == "/a"
    with pytest.raises(ts.ShellError, match=r"--trainee: 'bob' is not a trainee of this lab; the lab's "
                                            r"trainees: trainee-1, trainee-2"):
        ts.trainee_kubeconfig(lab, "bob")


def test_lab_ca_is_next_to_lab_json():
    assert ts.lab_ca_paths("/var/lib/opsdrill-lab/lab.json") == ("/var/lib/opsdrill-lab/pki/ca.crt",
                                                                 "/var/lib/opsdrill-lab/pki/ca.key")


# ----------------------------------------------------------------------------- kubeconfig

def _config(user):
    return {
        "current-context": "trainee-1@lab",
        "clusters": [{"name": "other", "cluster": {"server": "https://10.0.0.1"}},
                     {"name": "lab", "cluster": {"server": "https://198.18.0.10:6443"}}],
        "contexts": [{"name": "trainee-1@lab", "context": {"cluster": "lab", "user": "trainee-1"}}],
        "users": [{"name": "trainee-1", "user": user}],
    }


def test_token_of_the_current_context():
    creds = ts.credentials_from_config(_config({"client-certificate-data": "x", "token": "abc.def\n"}))
    assert creds == {"server": "https://198.18.0.10:6443", "token": "abc.def", "user": "trainee-1"}


def test_token_file_is_relative_to_the_kubeconfig(tmp_path):
    (tmp_path / "tok").write_text("from-file\n")
    creds = ts.credentials_from_config(_config({"tokenFile": "tok"}), str(tmp_path))
    assert creds["token"] == "from-file"


@pytest.mark.parametrize("mutate, match", [
    (lambda c: c["users"][0].update(user={"client-certificate-data": "x"}), "has no bearer token"),
    (lambda c: c.pop("current-context"), "no current-context"),
    (lambda c: c.update(contexts=[]), "no context entry named 'trainee-1@lab'"),
    (lambda c: c["clusters"][1]["cluster"].update(server="http://plain"), "is not an https:// URL"),
])
def test_kubeconfig_problems(mutate, match):
    config = _config({"token": "t"})
    mutate(config)
    with pytest.raises(ts.ShellError, match=match):
        ts.credentials_from_config(config)


def test_read_kubeconfig_json_directly(tmp_path):
    path = tmp_path / "kc.json"
    path.write_text(json.dumps(_config({"token": "t1"})))
    assert ts.read_kubeconfig(str(path), "/nonexistent/kubectl")["token"] == "t1"


def test_read_kubeconfig_yaml_through_kubectl(tmp_path):
    path = tmp_path / "kc.yaml"
    path.write_text("apiVersion: v1\nkind: Config\n")
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\n[ \"$1 $2 $3\" = 'config view --raw' ] || exit 9\ncat <<'EOF'\n%s\nEOF\n"
                    % json.dumps(_config({"token": "t2"})))
    fake.chmod(0o755)
    assert ts.read_kubeconfig(str(path), str(fake))["token"] == "t2"
    fake.write_text("#!/bin/sh\necho 'error: broken' >&2\nexit 1\n")
    with pytest.raises(ts.ShellError, match="cannot read the kubeconfig .*: error: broken"):
        ts.read_kubeconfig(str(path), str(fake))


# ----------------------------------------------------------------------------- hosts, addresses

def test_hosts_text_puts_the_shell_address_first_and_drops_other_entries_for_the_host():
    original = ("127.0.0.1\tlocalhost\n# a comment\n10.1.1.1 api.seo-tool.com\n"
                "10.2.2.2 web API.seo-tool.com. other # old\n::1 localhost ip6-localhost\n")
    text = ts.hosts_text(original, "127.77.1.2", "api.seo-tool.com")
    lines = text.splitlines()
    assert lines[1] == "127.77.1.2\tapi.seo-tool.com"
    assert "127.0.0.1\tlocalhost" in lines and "# a comment" in lines and "::1 localhost ip6-localhost" in lines
    assert "10.1.1.1" not in text
    assert "10.2.2.2\tweb\tother # old" in lines
    assert sum("api.seo-tool.com" in line.lower() for line in lines if not line.startswith("#")) == 1
    assert text.endswith("\n")


def test_candidate_addresses_are_private_loopback_and_distinct():
    for seed in (0, 1, 253, 254, 4242, 65535, 4194304):
        addresses = ts.candidate_addresses(seed)
        assert len(set(addresses)) == len(addresses) == 16
        for address in addresses:
            octets = [int(o) for o in address.split(".")]
            assert octets[:2] == [127, 77] and 0 <= octets[2] <= 255 and 1 <= octets[3] <= 254
    assert ts.candidate_addresses(1)[0] != ts.candidate_addresses(2)[0]


# ----------------------------------------------------------------------------- requests

BASE = "/api/v1/namespaces/seo-tool/services/api-gateway:http/proxy"


@pytest.mark.parametrize("target, expected", [
    ("/metrics", BASE + "/metrics"),
    ("/", BASE + "/"),
    ("", BASE + "/"),
    ("/health?verbose=1&x=%20y", BASE + "/health?verbose=1&x=%20y"),
    ("/api/keywords/seo%20tools/rank", BASE + "/api/keywords/seo%20tools/rank"),
    ("https://api.seo-tool.com/metrics?a=b", BASE + "/metrics?a=b"),
    ("/a/./b/../c/", BASE + "/a/c/"),
    ("/../../../secrets", BASE + "/secrets"),
    ("/api/..", BASE + "/"),
])
def test_upstream_path(target, expected):
    assert ts.upstream_path("seo-tool", target) == expected


def test_upstream_path_other_namespace():
    assert ts.upstream_path("opsdrill-x", "/metrics") == \
        "/api/v1/namespaces/opsdrill-x/services/api-gateway:http/proxy/metrics"


def test_forward_headers():
    headers = ts.forward_headers([("Host", "api.seo-tool.com"), ("User-Agent", "curl/8.0"), ("Accept", "*/*"),
                                  ("Authorization", "Basic eA=="), ("Connection", "keep-alive"),
                                  ("Content-Type", "application/json"), ("Accept-Encoding", "gzip"),
                                  ("Impersonate-User", "admin"), ("X-Request-Id", "r1")], "tok")
    assert headers == {"User-Agent": "curl/8.0 (opsdrill-trainee-shell)", "Accept": "*/*",
                       "Content-Type": "application/json", "X-Request-Id": "r1", "Authorization": "Bearer tok"}
    assert ts.forward_headers([], "t")["User-Agent"] == "opsdrill-trainee-shell"


def test_response_headers_drop_hop_by_hop():
    assert ts.response_headers([("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                                ("Content-Length", "5"), ("Date", "x"), ("X-Request-Id", "1")]) == \
        [("Content-Type", "text/plain"), ("X-Request-Id", "1")]


def _status(code, message, reason="X"):
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                       "reason": reason, "code": code}).encode()


@pytest.mark.parametrize("status, body, expected_status, words", [
    (403, _status(403, 'User "trainee-1" cannot get resource "services/proxy"', "Forbidden"), 403,
     "refused the request (Forbidden)"),
    (401, _status(401, "Unauthorized", "Unauthorized"), 401, "refused"),
    (404, _status(404, 'services "api-gateway" not found', "NotFound"), 502, "no such Service"),
    (503, _status(503, 'no endpoints available for service "api-gateway"'), 503, "no ready api-gateway pods"),
    (503, _status(503, "error trying to reach service: dial tcp: connection refused"), 502, "could not reach"),
    (500, _status(500, "boom"), 502, "could not reach"),
    (504, _status(504, "timeout"), 504, "did not answer in time"),
])
def test_api_server_errors_are_mapped(status, body, expected_status, words):
    mapped = ts.api_server_error(status, "application/json", body)
    assert mapped[0] == expected_status and words in mapped[1]


@pytest.mark.parametrize("status, content_type, body", [
    (500, "application/json", b'{"error": "backend down"}'),
    (503, "text/plain", _status(503, "x")),
    (200, "application/json", b'{"kind": "Status", "status": "Success"}'),
    (502, "application/json", b"not json"),
    (503, "application/json", b""),
])
def test_gateway_answers_pass_through(status, content_type, body):
    assert ts.api_server_error(status, content_type, body) is None


def test_stale_workdirs_of_dead_shells_are_removed(tmp_path):
    for name, pid in (("opsdrill-trainee-shell-dead", "11"), ("opsdrill-trainee-shell-live", "22"),
                      ("other-dir", "11")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pid").write_text(pid + "\n")
    (tmp_path / "opsdrill-trainee-shell-new").mkdir()  # no pid file yet: being made
    ended = []
    removed = ts.remove_stale_workdirs(str(tmp_path), alive=lambda pid: pid == 22, end=ended.append)
    assert removed == [str(tmp_path / "opsdrill-trainee-shell-dead")]
    assert ended == ["opsdrill-trainee-shell-dead"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opsdrill-trainee-shell-live", "opsdrill-trainee-shell-new",
                                                          "other-dir"]


def test_session_processes_are_found_by_their_environment(tmp_path):
    session = "opsdrill-trainee-shell-test%d" % os.getpid()
    env = dict(os.environ, **{ts.SESSION_ENV: session})
    child = subprocess.Popen(["sleep", "30"], env=env)  # pylint: disable=consider-using-with
    other = subprocess.Popen(["sleep", "30"])  # pylint: disable=consider-using-with
    try:
        assert ts.session_processes(session) == [child.pid]
        ts.end_session_processes(session)
        assert child.wait(5) == -1  # SIGHUP
        assert other.poll() is None
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()


def test_ca_bundle_and_shims():
    bundle = ts.ca_bundle_text("SYSTEM\n", "\nLAB\n")
    assert bundle == "SYSTEM\n# opsdrill lab CA\nLAB\n"
    assert ts.ca_bundle_text("", "LAB") == "# opsdrill lab CA\nLAB\n"
    redis = ts.shim_texts("opsdrill-x", "/opt/k 8s/kubectl")["redis-cli"]
    assert redis.startswith("#!/bin/sh\n")
    assert "exec '/opt/k 8s/kubectl' exec $tty -n opsdrill-x deploy/redis -- redis-cli \"$@\"" in redis


def test_rcfile_sets_the_environment_after_the_users_bashrc():
    text = ts.rcfile_text({"KUBECONFIG": "/k c", "PATH": "/s:/usr/bin"}, "[t@ns] \\W $ ", "banner\n")
    assert text.index("~/.bashrc") < text.index("export KUBECONFIG='/k c'") < text.index("PS1=")
    assert "PS1='[t@ns] \\W $ '" in text
    assert text.rstrip().endswith("banner\nOPSDRILL_BANNER")


# ----------------------------------------------------------------------------- the proxy, end to end

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl missing")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl missing")
    base = tmp_path_factory.mktemp("pki")
    ca_crt, ca_key = str(base / "ca.crt"), str(base / "ca.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
                    "-days", "2", "-subj", "/CN=test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)
    cert, key = ts.ensure_certificate(str(base / "cache"), "api.example.test", ca_crt, ca_key)
    return {"ca": ca_crt, "ca_key": ca_key, "cert": cert, "key": key, "cache": str(base / "cache")}


@needs_openssl
def test_certificate_is_signed_by_the_ca_for_the_host_and_cached(pki):
    out = subprocess.run(["openssl", "x509", "-in", pki["cert"], "-noout", "-text"], check=True,
                         capture_output=True, text=True).stdout
    assert "DNS:api.example.test" in out and "TLS Web Server Authentication" in out
    assert oct(os.stat(pki["key"]).st_mode & 0o777) == "0o600"
    before = os.stat(pki["cert"]).st_mtime_ns
    again = ts.ensure_certificate(pki["cache"], "api.example.test", pki["ca"], pki["ca_key"])
    assert again == (pki["cert"], pki["key"])
    assert os.stat(pki["cert"]).st_mtime_ns == before


class _FakeApiServer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
        if "/proxy/forbidden" in self.path:
            status, ctype, data = 403, "application/json", _status(403, "nope", "Forbidden")
        elif "/proxy/fail" in self.path:
            status, ctype, data = 500, "application/json", b'{"error": "gateway says no"}'
        else:
            status, ctype, data = 200, "text/plain", b"seo_error_rate 0.25\n" + body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = _answer


@pytest.fixture()
def proxy(pki, tmp_path):
    _FakeApiServer.seen = []
    upstream_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeApiServer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    upstream_server.socket = context.wrap_socket(upstream_server.socket, server_side=True)
    threading.Thread(target=upstream_server.serve_forever, daemon=True).start()
    client_context = ssl.create_default_context(cafile=pki["ca"])
    client_context.check_hostname = False  # the fake API server's certificate names api.example.test
    upstream = {"server": "https://127.0.0.1:%d" % upstream_server.server_address[1], "host": "127.0.0.1",
                "port": upstream_server.server_address[1], "token": "tok-1", "namespace": "ns1",
                "context": client_context}
    gateway = ts.GatewayProxy("127.0.0.1", 0, pki["cert"], pki["key"], upstream, str(tmp_path / "proxy.log"))
    gateway.start()

    def request(method, path, body=None):
        ctx = ssl.create_default_context(cafile=pki["ca"])
        conn = http.client.HTTPSConnection("127.0.0.1", gateway.server_address[1], context=ctx, timeout=10)
        # The proxy's certificate must verify for the host name (as curl checks it).
        conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", gateway.server_address[1])),
                                    server_hostname="api.example.test")
        conn.request(method, path, body=body, headers={"User-Agent": "curl/8.0"})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    yield request, _FakeApiServer.seen
    gateway.stop()
    upstream_server.shutdown()
    upstream_server.server_close()


@needs_openssl
def test_proxy_forwards_to_the_service_proxy_with_the_token(proxy):
    request, seen = proxy
    response, data = request("GET", "/metrics?x=1")
    assert response.status == 200 and data == b"seo_error_rate 0.25\n"
    assert seen[-1][:3] == ("GET", "/api/v1/namespaces/ns1/services/api-gateway:http/proxy/metrics?x=1",
                            "Bearer tok-1")
    response, data = request("POST", "/api/report", body=b'{"a": 1}')
    assert response.status == 200 and data.endswith(b'{"a": 1}') and seen[-1][3] == b'{"a": 1}'


@needs_openssl
def test_proxy_head_keeps_the_length_without_a_body(proxy):
    request, seen = proxy
    response, data = request("HEAD", "/health")
    assert response.status == 200 and data == b""
    assert response.getheader("Content-Length") == str(len(b"seo_error_rate 0.25\n"))
    assert seen[-1][0] == "HEAD"


@needs_openssl
def test_proxy_maps_api_server_errors_and_passes_gateway_errors(proxy):
    request, _seen = proxy
    response, data = request("GET", "/forbidden")
    assert response.status == 403 and b"refused the request (Forbidden): nope" in data
    assert response.getheader("X-Opsdrill-Proxy-Error") == "1"
    response, data = request("GET", "/fail")
    assert response.status == 500 and data == b'{"error": "gateway says no"}'


@needs_openssl
def test_proxy_answers_502_when_the_api_server_is_unreachable(pki, tmp_path):
    upstream = {"server": "https://127.0.0.1:1", "host": "127.0.0.1", "port": 1, "token": "t",
                "namespace": "ns1", "context": ssl.create_default_context(cafile=pki["ca"])}
    gateway = ts.GatewayProxy("127.0.0.1", 0, pki["cert"], pki["key"], upstream, str(tmp_path / "log"))
    gateway.start()
    try:
        ctx = ssl.create_default_context(cafile=pki["ca"])
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", gateway.server_address[1], context=ctx, timeout=10)
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 502 and b"cannot reach the API server" in response.read()
        conn.close()
    finally:
        gateway.stop()
