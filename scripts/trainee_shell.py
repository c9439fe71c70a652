#!/usr/bin/env python
"""A shell as a lab trainee, in which every command of the seed documents works as written.

    make shell TRAINEE=trainee-1 [NAMESPACE=seo-tool]
    scripts/trainee_shell.py --trainee trainee-1 [--namespace seo-tool]
    scripts/trainee_shell.py --trainee trainee-1 -c 'curl -I https://api.seo-tool.com/health'

Inside the shell (interactive bash, or one command with -c; its exit status is the command's):

* ``kubectl`` is the lab's binary with the trainee's kubeconfig (KUBECONFIG), so the API
  server's audit log names the trainee.
* ``https://api.seo-tool.com/...`` (``--host``) resolves, in this shell only (a private mount
  namespace with its own /etc/hosts), to a loopback address of its own (127.77.x.y). A small
  TLS proxy there (certificate signed by the lab CA, cached in ~/.cache/opsdrill/trainee-shell)
  forwards each request to the API server's service proxy of api-gateway
  (``/api/v1/namespaces/<ns>/services/api-gateway:http/proxy/<path>``) with the trainee's
  bearer token: every curl is the trainee's request in the audit log.
* curl, Python and other OpenSSL clients trust the lab CA (CURL_CA_BUNDLE, SSL_CERT_FILE,
  REQUESTS_CA_BUNDLE name a bundle of the system CAs and the lab CA).
* ``redis-cli ARGS`` runs ``kubectl exec -n <ns> deploy/redis -- redis-cli ARGS`` as the trainee.
* The working directory is a fresh clone of the namespace's deploy repository
  (``git log -p services/api-gateway``), removed at exit.

On exit the proxy stops and the temporary files go; nothing stays mounted on the host.
Runs as root on the lab's host (the lab is root's); standard library only, plus the
``unshare``, ``mount``, ``openssl`` and ``git`` commands.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import http.server
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DEFAULT_LAB_JSON = "/var/lib/opsdrill-lab/lab.json"
DEFAULT_NAMESPACE = "seo-tool"
DEFAULT_HOST = "api.seo-tool.com"
DEFAULT_DEPLOY_REPO_BASE = "~/.local/share/opsdrill/deploy-repo"
CACHE_DIR = "~/.cache/opsdrill/trainee-shell"
GATEWAY = "api-gateway:http"  # the Service and its port name behind --host
LOOPBACK_PREFIX = "127.77"
UPSTREAM_TIMEOUT_S = 30
PROG = "trainee_shell"
WORKDIR_PREFIX = "opsdrill-trainee-shell-"
# Every process of a shell has this in its environment (the work directory's name): what
# it left running at exit, or after this process was killed, is found and ended by it.
SESSION_ENV = "OPSDRILL_TRAINEE_SHELL_SESSION"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# Not forwarded in either direction (RFC 9110 hop-by-hop), or set by the proxy itself.
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade", "proxy-connection"))
_REQUEST_DROP = _HOP_BY_HOP | {"host", "authorization", "content-length", "accept-encoding", "cookie"}
_RESPONSE_DROP = _HOP_BY_HOP | {"content-length", "date", "server"}


class ShellError(Exception):
    """Bad input or a missing prerequisite: the message is for the user; nothing was changed."""


# ----------------------------------------------------------------------------- arguments

def _namespace(value):
    if not _DNS_LABEL.match(value or ""):
        raise argparse.ArgumentTypeError(
            "%r is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63, "
            "starting and ending with a letter or digit), e.g. seo-tool" % value)
    return value


def _host(value):
    value = (value or "").lower().rstrip(".")
    if not _HOSTNAME.match(value):
        raise argparse.ArgumentTypeError("%r is not a DNS host name with a domain, e.g. api.seo-tool.com" % value)
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="trainee_shell.py",
        description="Open a bash as a lab trainee in which the seed documents' commands (kubectl, curl "
                    "https://api.seo-tool.com/..., redis-cli, git log, watch) work as written and are "
                    "audited as the trainee's.",
        epilog="Examples: make shell TRAINEE=trainee-1; "
               "%(prog)s --trainee trainee-2 --namespace seo-tool -c 'curl -s https://api.seo-tool.com/health'")
    parser.add_argument("--trainee", required=True,
                        help="the lab trainee to act as (a key of trainee_kubeconfigs in the lab's lab.json)")
    parser.add_argument("--namespace", type=_namespace, default=DEFAULT_NAMESPACE,
                        help="the drill namespace (default: %(default)s)")
    parser.add_argument("--lab-json", default=DEFAULT_LAB_JSON,
                        help="the lab's description, written by lab.yml (default: %(default)s)")
    parser.add_argument("--deploy-repo-base", default=DEFAULT_DEPLOY_REPO_BASE,
                        help="directory of the deploy repositories, one per namespace (default: %(default)s)")
    parser.add_argument("--host", type=_host, default=DEFAULT_HOST,
                        help="the host name that reaches api-gateway in the shell (default: %(default)s)")
    parser.add_argument("-c", dest="command", metavar="COMMAND",
                        help="run COMMAND in the shell (bash -c) and exit with its status, instead of an "
                             "interactive shell")
    return parser


def parse_args(argv):
    return build_parser().parse_args(argv)


# ----------------------------------------------------------------------------- the lab

def load_lab(path):
    """The lab's lab.json as a dict; ShellError naming --lab-json when it is missing or wrong."""
    if not os.path.exists(path):
        raise ShellError("--lab-json: %s does not exist: the lab is not running. Start it with `make lab` "
                         "(or ansible-playbook lab.yml -e lab_state=present), or name another lab.json "
                         "with --lab-json" % path)
    try:
        with open(path, encoding="utf-8") as handle:
            lab = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ShellError("--lab-json: cannot read %s: %s" % (path, exc)) from exc
    missing = [key for key in ("kubectl", "admin_kubeconfig", "trainee_kubeconfigs")
               if not isinstance(lab, dict) or not lab.get(key)]
    if missing:
        raise ShellError("--lab-json: %s has no %s: not a lab.json written by lab.yml" % (path, ", ".join(missing)))
    return lab


def trainee_kubeconfig(lab, trainee):
    """The trainee's kubeconfig path from lab.json; unknown trainees are refused with the list."""
    trainees = lab.get("trainee_kubeconfigs") or {}
    if trainee not in trainees:
        raise ShellError("--trainee: %r is not a trainee of this lab; the lab's trainees: %s"
                         % (trainee, ", ".join(sorted(trainees)) or "(none)"))
    return trainees[trainee]


def lab_ca_paths(lab_json):
    """(ca.crt, ca.key) of the lab: the pki directory next to lab.json."""
    pki = os.path.join(os.path.dirname(os.path.abspath(lab_json)), "pki")
    return os.path.join(pki, "ca.crt"), os.path.join(pki, "ca.key")


def credentials_from_config(config, base_dir="."):
    """{server, token, user} of a kubeconfig's current context (the config as a dict, e.g. the
    JSON of ``kubectl config view --raw -o json``). The token is ``token``, or the content of
    ``tokenFile`` (relative to base_dir)."""
    if not isinstance(config, dict):
        raise ShellError("the kubeconfig is not a mapping")

    def named(section, name):
        for item in config.get(section) or []:
            if isinstance(item, dict) and item.get("name") == name:
                return item
        raise ShellError("the kubeconfig has no %s entry named %r" % (section[:-1], name))

    current = config.get("current-context")
    if not current:
        raise ShellError("the kubeconfig has no current-context")
    context = named("contexts", current).get("context") or {}
    cluster = named("clusters", context.get("cluster")).get("cluster") or {}
    user_name = context.get("user")
    user = named("users", user_name).get("user") or {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        path = os.path.join(base_dir, os.path.expanduser(user["tokenFile"]))
        with open(path, encoding="utf-8") as handle:
            token = handle.read()
    token = (token or "").strip()
    if not token:
        raise ShellError("the kubeconfig's user %r has no bearer token (token or tokenFile)" % user_name)
    server = cluster.get("server") or ""
    if not server.startswith("https://"):
        raise ShellError("the kubeconfig's cluster server %r is not an https:// URL" % server)
    return {"server": server, "token": token, "user": user_name}


def read_kubeconfig(path, kubectl):
    """The current context's {server, token, user}: JSON kubeconfigs are read directly, YAML ones
    through ``kubectl config view --raw -o json`` (no YAML parser in the standard library)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ShellError("cannot read the trainee's kubeconfig %s: %s" % (path, exc)) from exc
    try:
        config = json.loads(text)
    except ValueError:
        done = subprocess.run([kubectl, "config", "view", "--raw", "-o", "json", "--kubeconfig", path],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ShellError("cannot read the kubeconfig %s: %s" % (path, done.stderr.strip())) from None
        config = json.loads(done.stdout)
    try:
        return credentials_from_config(config, os.path.dirname(path))
    except ShellError as exc:
        raise ShellError("%s: %s" % (path, exc)) from None


def check_namespace(lab, namespace):
    """Refuse a namespace the lab does not have (read with the admin kubeconfig, so the
    trainee's audit trail starts with the trainee's own commands)."""
    base = [lab["kubectl"], "--kubeconfig", lab["admin_kubeconfig"], "--request-timeout", "10s"]
    done = subprocess.run(base + ["get", "namespace", namespace, "-o", "name"],
                          capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    if "NotFound" not in done.stderr and "not found" not in done.stderr:
        raise ShellError("cannot reach the lab's API server: %s" % done.stderr.strip())
    listed = subprocess.run(base + ["get", "namespaces", "-l", "opsdrill.io/drill-target=true", "-o",
                                    "jsonpath={.items[*].metadata.name}"],
                            capture_output=True, text=True, check=False)
    names = ", ".join(listed.stdout.split()) if listed.returncode == 0 else ""
    raise ShellError("--namespace: the lab has no namespace %r; drill namespaces: %s (setup.yml "
                     "-e drill_namespace=NS creates one)" % (namespace, names or "(none)"))


# ----------------------------------------------------------------------------- pure helpers

def hosts_text(original, address, host):
    """/etc/hosts for the shell: ``address host`` first, and the original without ``host``
    (a line left with no names is dropped, comments and other lines stay)."""
    lines = ["# opsdrill trainee shell: %s is the shell's proxy to api-gateway" % host,
             "%s\t%s" % (address, host)]
    for line in original.splitlines():
        body, hash_, comment = line.partition("#")
        fields = body.split()
        if len(fields) >= 2 and host in [name.lower().rstrip(".") for name in fields[1:]]:
            names = [name for name in fields[1:] if name.lower().rstrip(".") != host]
            if not names:
                continue
            line = "\t".join([fields[0]] + names) + ((" " + hash_ + comment) if hash_ else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


def candidate_addresses(seed, count=16):
    """Loopback addresses 127.77.x.y (y in 1..254) to try for the shell's proxy, starting at one
    derived from seed (the process id): each shell gets its own."""
    out = []
    for step in range(count):
        n = (seed + step * 7919) % (256 * 254)
        out.append("%s.%d.%d" % (LOOPBACK_PREFIX, n // 254, n % 254 + 1))
    return out


def _remove_dot_segments(path):
    out = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def upstream_path(namespace, target, gateway=GATEWAY):
    """The API server path that proxies the request target (``/metrics?x=1``, or an absolute
    URL) to the gateway Service: ``/api/v1/namespaces/<ns>/services/<gateway>/proxy/metrics?x=1``.
    Dot segments are resolved first, so a path cannot leave the service proxy."""
    split = urllib.parse.urlsplit(target)
    path = split.path if (split.scheme or target.startswith("//")) else target.split("?", 1)[0]
    query = split.query if (split.scheme or target.startswith("//")) else target.partition("?")[2]
    path = _remove_dot_segments(path or "/")
    out = "/api/v1/namespaces/%s/services/%s/proxy%s" % (namespace, gateway, path)
    return out + ("?" + query if query else "")


def forward_headers(items, token, user_agent_suffix="opsdrill-trainee-shell"):
    """The request headers sent to the API server: the client's, without hop-by-hop ones, Host,
    Cookie, Accept-Encoding and the client's own Authorization; the trainee's bearer token."""
    headers = {}
    for name, value in items:
        lower = name.lower()
        if lower in _REQUEST_DROP or lower.startswith("proxy-") or lower.startswith("impersonate-"):
            continue
        headers[name] = value
    agent = headers.pop("User-Agent", None) or headers.pop("user-agent", None)
    headers["User-Agent"] = "%s (%s)" % (agent, user_agent_suffix) if agent else user_agent_suffix
    headers["Authorization"] = "Bearer %s" % token
    return headers


def response_headers(items):
    return [(name, value) for name, value in items if name.lower() not in _RESPONSE_DROP]


def api_server_error(status, content_type, body):
    """When the response is the API server's own error (a Status object) rather than the
    gateway's answer: (status, text) to give the client, else None.

    401/403 stay (the trainee's credentials or RBAC), a missing Service or namespace is a 502,
    no ready endpoints a 503, and a gateway the API server could not reach a 502, the way a
    load balancer in front of api-gateway answers."""
    if "json" not in (content_type or "") or not body:
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("kind") != "Status" or obj.get("status") == "Success":
        return None
    message = obj.get("message") or obj.get("reason") or "error"
    if status in (401, 403):
        mapped = status
        text = "the API server refused the request (%s): %s" % (obj.get("reason") or status, message)
    elif status == 404:
        mapped, text = 502, "no such Service behind this host: %s" % message
    elif status == 503 and "no endpoints" in message.lower():
        mapped, text = 503, "no ready api-gateway pods: %s" % message
    elif status in (500, 502, 503):
        mapped, text = 502, "the API server could not reach api-gateway: %s" % message
    elif status == 504:
        mapped, text = 504, "api-gateway did not answer in time: %s" % message
    else:
        mapped, text = status, message
    return mapped, text


def ca_bundle_text(system_text, lab_ca_text):
    """The shell's CA bundle: the system CAs and the lab CA."""
    parts = [system_text.rstrip("\n")] if system_text.strip() else []
    parts.append("# opsdrill lab CA\n" + lab_ca_text.strip("\n"))
    return "\n".join(parts) + "\n"


def system_ca_file():
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt",
                      "/etc/pki/tls/certs/ca-bundle.crt"):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def shim_texts(namespace, kubectl):
    """{name: script} of the shell's shims besides kubectl (a symlink to the lab's binary)."""
    ns = shlex.quote(namespace)
    return {
        "redis-cli": "\n".join((
            "#!/bin/sh",
            "# opsdrill trainee shell: redis-cli of the drill's redis, as the trainee (kubectl exec).",
            'if [ -t 0 ] && [ -t 1 ]; then tty=-it; elif [ $# -eq 0 ]; then tty=-i; else tty=; fi',
            'exec %s exec $tty -n %s deploy/redis -- redis-cli "$@"' % (shlex.quote(kubectl), ns),
            "")),
    }


def rcfile_text(env, prompt, banner):
    lines = ["# opsdrill trainee shell",
             "[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc",
             "[ -f ~/.bashrc ] && . ~/.bashrc"]
    for key in sorted(env):
        lines.append("export %s=%s" % (key, shlex.quote(env[key])))
    lines.append("PS1=%s" % shlex.quote(prompt))
    lines.append("unset PROMPT_COMMAND")
    lines.append("cat <<'OPSDRILL_BANNER'\n%sOPSDRILL_BANNER" % banner)
    return "\n".join(lines) + "\n"


def banner_text(trainee, namespace, host, repo_note):
    return "\n".join((
        "opsdrill trainee shell: %s in namespace %s (everything below is audited as %s)" % (
            trainee, namespace, trainee),
        "  kubectl ...                         the lab's kubectl as %s, e.g. kubectl get pods -n %s" % (
            trainee, namespace),
        "  curl https://%s/...   api-gateway through the API server's service proxy" % host,
        "                                      (/metrics, /health, /api/...; curl -I works)",
        "  watch 'curl -s https://%s/metrics | grep error_rate'" % host,
        "  redis-cli ARGS                      kubectl exec -n %s deploy/redis -- redis-cli ARGS" % namespace,
        "  git log -p services/api-gateway     %s" % repo_note,
        "  exit (or Ctrl-D) ends the shell; its directory and proxy go with it.",
        ""))


# ----------------------------------------------------------------------------- certificate

def _openssl(*args):
    done = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ShellError("openssl %s failed: %s" % (args[0], (done.stderr or done.stdout).strip()))
    return done.stdout


def _certificate_usable(crt, key, ca_crt):
    if not (os.path.isfile(crt) and os.path.isfile(key)):
        return False
    for args in (["verify", "-CAfile", ca_crt, crt], ["x509", "-checkend", "86400", "-noout", "-in", crt]):
        if subprocess.run(["openssl"] + args, capture_output=True, check=False).returncode != 0:
            return False
    return True


def ensure_certificate(cache_dir, host, ca_crt, ca_key):
    """(cert, key) for host signed by the lab CA, made once with the openssl CLI and cached
    (made again when the lab CA changed or it expires within a day)."""
    if shutil.which("openssl") is None:
        raise ShellError("openssl is not installed: it makes the certificate of %s (apt-get install openssl)" % host)
    for path in (ca_crt, ca_key):
        if not os.access(path, os.R_OK):
            raise ShellError("cannot read the lab CA %s (run as root on the lab's host)" % path)
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    crt, key = os.path.join(cache_dir, host + ".crt"), os.path.join(cache_dir, host + ".key")
    with open(os.path.join(cache_dir, ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _certificate_usable(crt, key, ca_crt):
            return crt, key
        work = tempfile.mkdtemp(prefix=".new-", dir=cache_dir)
        try:
            new_key, csr, new_crt, ext = (os.path.join(work, name) for name in ("key", "csr", "crt", "ext"))
            with open(ext, "w", encoding="utf-8") as handle:
                handle.write("subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\n"
                             "keyUsage=critical,digitalSignature,keyEncipherment\n"
                             "extendedKeyUsage=serverAuth\n" % host)
            old_umask = os.umask(0o077)
            try:
                _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", new_key,
                         "-subj", "/O=opsdrill trainee shell/CN=%s" % host, "-out", csr)
                _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                         "-set_serial", "0x" + secrets.token_hex(16), "-days", "365", "-sha256",
                         "-extfile", ext, "-out", new_crt)
            finally:
                os.umask(old_umask)
            os.chmod(new_key, 0o600)
            os.replace(new_key, key)
            os.replace(new_crt, crt)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return crt, key


# ----------------------------------------------------------------------------- the proxy

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "opsdrill-trainee-shell"
    timeout = 120

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        self.server.log("%s %s" % (self.address_string(), format % args))

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else None

    def _reply(self, status, headers, body, reason=None):
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, text):
        self._reply(status, [("Content-Type", "text/plain; charset=utf-8"),
                             ("X-Opsdrill-Proxy-Error", "1")],
                    ("opsdrill trainee shell: %s\n" % text).encode())

    def _forward(self):
        upstream = self.server.upstream
        try:
            body = self._read_body()
        except ValueError:
            self._error(400, "malformed request body")
            return
        target = upstream_path(upstream["namespace"], self.path)
        headers = forward_headers(self.headers.items(), upstream["token"])
        conn = http.client.HTTPSConnection(upstream["host"], upstream["port"], context=upstream["context"],
                                           timeout=UPSTREAM_TIMEOUT_S)
        try:
            conn.request(self.command, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except socket.timeout:
            self._error(504, "the API server %s did not answer within %d s"
                        % (upstream["server"], UPSTREAM_TIMEOUT_S))
            return
        except (OSError, http.client.HTTPException) as exc:
            self._error(502, "cannot reach the API server %s: %s" % (upstream["server"], exc))
            return
        finally:
            conn.close()
        mapped = api_server_error(response.status, response.getheader("Content-Type"), data)
        if mapped is not None:
            self._error(*mapped)
            return
        headers = response_headers(response.getheaders())
        if self.command == "HEAD":
            # No body came back: say the length the gateway said (curl -I shows it).
            self.send_response(response.status, response.reason)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", response.getheader("Content-Length") or "0")
            self.end_headers()
            return
        self._reply(response.status, headers, data, response.reason)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward


class GatewayProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTPS on (address, 443) with the host's certificate; forwards to the API server's
    service proxy of the gateway with the trainee's token."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, port, cert, key, upstream, log_path):
        self.upstream = upstream
        self._log_path = log_path
        self._log_lock = threading.Lock()
        super().__init__((address, port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="trainee-shell-proxy", daemon=True)

    def log(self, text):
        with self._log_lock, open(self._log_path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")

    def handle_error(self, request, client_address):
        self.log("%s: %s" % (client_address[0], sys.exc_info()[1]))

    def start(self):
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()
        self.thread.join(5)


def upstream_settings(creds, namespace, lab_ca):
    split = urllib.parse.urlsplit(creds["server"])
    context = ssl.create_default_context(cafile=lab_ca)
    return {"server": creds["server"], "host": split.hostname, "port": split.port or 443,
            "token": creds["token"], "namespace": namespace, "context": context}


def start_proxy(cert, key, upstream, log_path, seed):
    last = None
    for address in candidate_addresses(seed):
        try:
            proxy = GatewayProxy(address, 443, cert, key, upstream, log_path)
        except OSError as exc:
            last = exc
            continue
        proxy.start()
        return address, proxy
    raise ShellError("no free loopback address in %s.0.0/16 for the proxy on port 443: %s" % (LOOPBACK_PREFIX, last))


# ----------------------------------------------------------------------------- the shell

def clone_deploy_repo(base, namespace, workdir):
    """The working directory: a clone of <base>/<namespace>, or an empty directory with a note
    on stderr when there is no repository. Returns (path, note for the banner)."""
    source = os.path.join(os.path.expanduser(base), namespace)
    target = os.path.join(workdir, namespace)
    if not os.path.isdir(os.path.join(source, ".git")) and not os.path.isfile(os.path.join(source, "HEAD")):
        print("%s: no deploy repository for namespace %s at %s (setup.yml creates it; see "
              "--deploy-repo-base): starting in an empty directory, `git log` has nothing to show here"
              % (PROG, namespace, source), file=sys.stderr)
        os.makedirs(target)
        return target, "(no deploy repository for %s: this directory is empty)" % namespace
    if shutil.which("git") is None:
        raise ShellError("git is not installed: it clones the deploy repository %s" % source)
    done = subprocess.run(["git", "clone", "-q", "--no-hardlinks", source, target],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ShellError("cannot clone the deploy repository %s: %s" % (source, done.stderr.strip()))
    return target, "this directory is a fresh clone of the deploy repository"


def _alive(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return b"trainee_shell" in handle.read()
    except OSError:
        return False


def session_processes(session, proc="/proc"):
    """Process ids whose environment has SESSION_ENV=session (this process left out)."""
    marker = ("%s=%s" % (SESSION_ENV, session)).encode()
    found = []
    for name in os.listdir(proc):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(os.path.join(proc, name, "environ"), "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def end_session_processes(session, grace_s=0.3):
    """SIGHUP (as from a closed terminal) to what the session left running, SIGKILL to what
    is still there after grace_s."""
    for signum, wait_s in ((signal.SIGHUP, grace_s), (signal.SIGKILL, 0)):
        pids = session_processes(session)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
        if not pids:
            return
        deadline = time.monotonic() + wait_s
        while wait_s and time.monotonic() < deadline and session_processes(session):
            time.sleep(0.05)


def remove_stale_workdirs(base, alive=_alive, end=end_session_processes):
    """Remove the work directories of shells that are gone (a shell killed with SIGKILL
    could not remove its own); returns their paths."""
    removed = []
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        if not name.startswith(WORKDIR_PREFIX) or not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            with open(os.path.join(path, "pid"), encoding="utf-8") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            continue  # just being made, or not ours
        if not alive(pid):
            end(name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _exit_status(returncode):
    return 128 - returncode if returncode < 0 else returncode


def run(args):  # pylint: disable=too-many-locals
    if os.geteuid() != 0:
        raise ShellError("run as root: the shell needs a private mount namespace and port 443, and the "
                         "lab CA key is root's (sudo %s ...)" % sys.argv[0])
    for tool in ("unshare", "mount", "bash"):
        if shutil.which(tool) is None:
            raise ShellError("%s is not installed (util-linux / bash)" % tool)
    lab = load_lab(args.lab_json)
    kubeconfig = trainee_kubeconfig(lab, args.trainee)
    kubectl = lab["kubectl"]
    if not os.access(kubectl, os.X_OK):
        raise ShellError("--lab-json: the lab's kubectl %s is missing: rebuild the lab with `make lab`" % kubectl)
    ca_crt, ca_key = lab_ca_paths(args.lab_json)
    creds = read_kubeconfig(kubeconfig, kubectl)
    check_namespace(lab, args.namespace)
    cert, key = ensure_certificate(os.path.expanduser(CACHE_DIR), args.host, ca_crt, ca_key)

    remove_stale_workdirs(tempfile.gettempdir())
    workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    with open(os.path.join(workdir, "pid"), "w", encoding="utf-8") as handle:
        handle.write("%d\n" % os.getpid())
    proxy = None
    try:
        with open(ca_crt, encoding="utf-8") as handle:
            lab_ca_text = handle.read()
        system = system_ca_file()
        system_text = ""
        if system:
            with open(system, encoding="utf-8") as handle:
                system_text = handle.read()
        bundle = os.path.join(workdir, "ca-bundle.crt")
        with open(bundle, "w", encoding="utf-8") as handle:
            handle.write(ca_bundle_text(system_text, lab_ca_text))

        shims = os.path.join(workdir, "bin")
        os.makedirs(shims)
        os.symlink(kubectl, os.path.join(shims, "kubectl"))
        for name, text in shim_texts(args.namespace, kubectl).items():
            path = os.path.join(shims, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(path, 0o755)

        cwd, repo_note = clone_deploy_repo(args.deploy_repo_base, args.namespace, os.path.join(workdir, "work"))

        address, proxy = start_proxy(cert, key, upstream_settings(creds, args.namespace, ca_crt),
                                     os.path.join(workdir, "proxy.log"), os.getpid())
        hosts = os.path.join(workdir, "hosts")
        with open("/etc/hosts", encoding="utf-8") as handle:
            original = handle.read()
        with open(hosts, "w", encoding="utf-8") as handle:
            handle.write(hosts_text(original, address, args.host))
        os.chmod(hosts, 0o644)

        no_proxy = ",".join(filter(None, [os.environ.get("no_proxy") or os.environ.get("NO_PROXY"), args.host]))
        shell_env = {
            "KUBECONFIG": kubeconfig,
            "PATH": shims + os.pathsep + os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "CURL_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle,
            "no_proxy": no_proxy, "NO_PROXY": no_proxy,
            "OPSDRILL_TRAINEE": args.trainee, "OPSDRILL_NAMESPACE": args.namespace,
            "OPSDRILL_API_HOST": args.host, "OPSDRILL_PROXY_LOG": os.path.join(workdir, "proxy.log"),
            "HISTFILE": os.path.join(workdir, "bash_history"),
            SESSION_ENV: os.path.basename(workdir),
        }
        env = dict(os.environ, **shell_env)
        if args.command is not None:
            shell = ["bash", "-c", args.command]
        else:
            rcfile = os.path.join(workdir, "bashrc")
            prompt = "[%s@%s] \\W $ " % (args.trainee, args.namespace)
            with open(rcfile, "w", encoding="utf-8") as handle:
                handle.write(rcfile_text(shell_env, prompt,
                                         banner_text(args.trainee, args.namespace, args.host, repo_note)))
            shell = ["bash", "--rcfile", rcfile, "-i"]
        # unshare's mount namespace is private (no propagation back to the host): the bind
        # mount of the hosts file is seen by this shell and its children only, and goes with them.
        command = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                   'mount --bind "$0" /etc/hosts && exec "$@"', hosts] + shell
        if shutil.which("setpriv"):
            # Should this process be killed (SIGKILL), the shell gets a SIGHUP, as from a
            # closed terminal, rather than living on without its proxy.
            command = ["setpriv", "--pdeathsig", "HUP", "--"] + command
        child = subprocess.Popen(command, env=env, cwd=cwd)  # pylint: disable=consider-using-with

        def forward(signum, _frame):
            with contextlib.suppress(OSError):
                child.send_signal(signum)

        def ignore(_signum, _frame):
            pass

        # Interactive: Ctrl-C and Ctrl-\ reach the shell's commands from the terminal and must
        # not end the proxy. With -c, a SIGINT or SIGQUIT sent to this process alone (kill -INT)
        # goes to the command, which then ends the session. (Handlers, not SIG_IGN: the
        # shell's commands get the default disposition back.)
        for signum in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, forward if args.command is not None else ignore)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, forward)
        return _exit_status(child.wait())
    finally:
        end_session_processes(os.path.basename(workdir))
        shutil.rmtree(workdir, ignore_errors=True)
        if proxy is not None:
            proxy.stop()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except ShellError as exc:
        print("%s: %s" % (PROG, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
