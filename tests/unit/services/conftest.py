"""Fixtures for the SEO service tests: a real PostgreSQL, a real redis-server and the
service program itself, all as subprocesses on 127.0.0.1 with free ports and temp dirs.

SEO_TEST_PYTHON selects the interpreter that runs seo_service.py (default: the one
running pytest), e.g. to check Python 3.12.
"""

import glob
import http.client as httpclient
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SERVICE = REPO / "roles" / "test_services" / "files" / "seo_service.py"
PYTHON = os.environ.get("SEO_TEST_PYTHON") or sys.executable
LOCAL = "127.0.0.1"

# Passwords of the PostgreSQL roles the fixture creates (one per auth method).
PG_SUPER_PASSWORD = "pg-super-secret"
PG_USERS = {
    "seo": ("seo-scram-pass", "scram-sha-256"),
    "seo_md5": ("seo-md5-pass", "md5"),
    "seo_clear": ("seo-clear-pass", "password"),
    "seo_trust": ("", "trust"),
}
API_KEY = "backend-key-123"


# ----------------------------------------------------------------------------- helpers

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL, 0))
        return sock.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (connection refused)."""
    return free_port()


def wait_for(predicate, timeout=15.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (message, last))


def wait_metrics(proc, predicate, message, timeout=30.0):
    """Poll a service's /metrics until predicate(parsed) holds; return the parsed metrics."""
    holder = {}

    def check():
        holder["m"] = proc.metrics()
        return predicate(holder["m"])

    wait_for(check, timeout, 0.2, message)
    return holder["m"]


class HttpResult:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return "HttpResult(%d, %r)" % (self.status, self.body[:300])


def http(method, url, body=None, headers=None, timeout=20.0):
    parts = urllib.parse.urlsplit(url)
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    conn = httpclient.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, (parts.path or "/") + ("?" + parts.query if parts.query else ""), body=body,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data,
                          time.monotonic() - started)
    finally:
        conn.close()


def kw_path(keyword):
    return "/api/keywords/%s/rank" % urllib.parse.quote(keyword, safe="")


# ----------------------------------------------------------------------------- metrics parser

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % _NAME)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


class ParsedMetrics:
    def __init__(self, families):
        self.families = families

    def samples(self, name):
        out = []
        for family in self.families.values():
            out.extend(s for s in family["samples"] if s[0] == name)
        return out

    def value(self, name, **labels):
        found = [v for n, l, v in self.samples(name) if all(l.get(k) == str(x) for k, x in labels.items())]
        return sum(found) if found else None

    def total(self, name, **labels):
        return self.value(name, **labels) or 0


def parse_metrics(text):
    """Strict parser for the Prometheus text format 0.0.4 as the contract uses it."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families = {}
    current = None
    for line in text[:-1].split("\n"):
        assert line, "blank line in exposition"
        if line.startswith("# HELP "):
            name, _sep, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and help_text, line
            assert name not in families, "family %s declared twice" % name
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _sep, mtype = line[7:].partition(" ")
            assert name == current, "TYPE %s must follow its HELP" % name
            assert mtype in ("counter", "gauge", "histogram"), line
            families[name]["type"] = mtype
            continue
        assert not line.startswith("#"), line
        match = _SAMPLE.match(line)
        assert match, "bad sample line: %r" % line
        name, label_text, value = match.groups()
        assert current is not None and families[current]["type"], "sample before HELP/TYPE: %r" % line
        family = families[current]
        if family["type"] == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), line
        else:
            assert name == current, "sample %s outside its family %s" % (name, current)
        labels = {}
        if label_text:
            pairs = _LABEL.findall(label_text)
            rebuilt = ",".join('%s="%s"' % pair for pair in pairs)
            assert rebuilt == label_text, "bad labels: %r" % label_text
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") for k, v in pairs}
        family["samples"].append((name, labels, float(value)))
    for name, family in families.items():
        if family["type"] == "histogram":
            check_histogram(name, family["samples"])
    return ParsedMetrics(families)


def check_histogram(name, samples):
    series = {}
    for sname, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        entry = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            assert "le" in labels
            entry["buckets"].append((labels["le"], value))
        elif sname.endswith("_sum"):
            entry["sum"] = value
        else:
            entry["count"] = value
    for key, entry in series.items():
        buckets = entry["buckets"]
        assert buckets and buckets[-1][0] == "+Inf", "%s%s: last bucket must be +Inf" % (name, key)
        bounds = [float(le) for le, _count in buckets[:-1]]
        assert bounds == sorted(bounds), "%s: bucket bounds not increasing" % name
        counts = [v for _le, v in buckets]
        assert counts == sorted(counts), "%s%s: buckets not cumulative: %s" % (name, key, counts)
        assert entry["count"] == counts[-1], "%s: _count must equal the +Inf bucket" % name
        assert entry["sum"] is not None and entry["sum"] >= 0, "%s: _sum missing" % name


# ----------------------------------------------------------------------------- service processes

class ServiceProc:
    def __init__(self, role, env, workdir, wait=True, extra_args=()):
        self.role = role
        self.base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SEO_ROLE": role,
                         "SEO_LISTEN_HOST": LOCAL, "SEO_LOG_LEVEL": "INFO"}
        self.base_env.update({k: str(v) for k, v in env.items() if v is not None})
        for key in [k for k, v in env.items() if v is None]:
            self.base_env.pop(key, None)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_args
        self.expected_rc = 0
        for attempt in range(5):
            self._launch()
            if not wait:
                return
            if self.wait_ready(retry_bind=attempt < 4):
                return

    def _launch(self):
        self.port = free_port()
        self.url = "http://%s:%d" % (LOCAL, self.port)
        self.env = dict(self.base_env, SEO_PORT=str(self.port))
        self.log_path = self.workdir / ("%s-%d.log" % (self.role, self.port))
        self.err_path = self.workdir / ("%s-%d.err" % (self.role, self.port))
        with open(self.log_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([PYTHON, str(SERVICE), *self.extra_args], env=self.env, stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=30.0, retry_bind=False):
        """Wait until /livez answers from this very process (its pid), so the port is really ours."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if retry_bind and self.proc.returncode == 1 and "cannot listen" in self.stdout():
                    return False  # the free port was taken meanwhile: try another one
                raise AssertionError("%s exited with %s:\n%s\n%s"
                                     % (self.role, self.proc.returncode, self.stdout(), self.stderr()))
            try:
                livez = http("GET", self.url + "/livez", timeout=5)
                if livez.status == 200 and livez.json().get("pid") == self.proc.pid:
                    return True
            except (OSError, ValueError, AttributeError):
                pass
            time.sleep(0.05)
        raise AssertionError("%s did not come up:\n%s" % (self.role, self.stdout()))

    def stdout(self):
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self):
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def logs(self, level=None):
        out = []
        for line in self.stdout().splitlines():
            rec = json.loads(line)
            if level is None or rec["level"] == level:
                out.append(rec)
        return out

    def errors(self, contains=""):
        return [r for r in self.logs("ERROR") if contains in r["msg"]]

    def wait_log(self, contains, level="ERROR", timeout=10.0):
        return wait_for(lambda: [r for r in self.logs(level) if contains in r["msg"]], timeout,
                        message="%s log %r from %s" % (level, contains, self.role))

    def get(self, path, **kw):
        return http("GET", self.url + path, **kw)

    def post(self, path, body=None, **kw):
        return http("POST", self.url + path, body=body, **kw)

    def api(self, method, path, body=None, key=API_KEY, **kw):
        headers = dict(kw.pop("headers", {}) or {})
        if key is not None:
            headers["X-Api-Key"] = key
        return http(method, self.url + path, body=body, headers=headers, **kw)

    def metrics(self):
        resp = self.get("/metrics")
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse_metrics(resp.text)

    def rss(self):
        return self.metrics().value("seo_process_resident_memory_bytes", service=self.role)

    def signal(self, signum):
        if signum == signal.SIGTERM:
            self.term_sent = True
        self.proc.send_signal(signum)

    def stop(self, timeout=20.0):
        if self.proc.poll() is None:
            if not getattr(self, "term_sent", False):
                self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s did not stop on SIGTERM within %ss" % (self.role, timeout))
        return self.proc.returncode


class Spawner:
    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.procs = []

    def __call__(self, role, env=None, **kw):
        proc = ServiceProc(role, env or {}, self.workdir, **kw)
        self.procs.append(proc)
        return proc

    def close(self):
        problems = []
        for proc in self.procs:  # signal all first: they drain in parallel
            if proc.proc.poll() is None:
                proc.signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                rc = proc.stop()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if rc != proc.expected_rc:
                problems.append("%s exited %s (expected %s)\n%s"
                                % (proc.role, rc, proc.expected_rc, proc.stderr()[-2000:]))
            elif proc.stderr().strip():
                problems.append("%s wrote to stderr:\n%s" % (proc.role, proc.stderr()[-2000:]))
        assert not problems, "\n".join(problems)


@pytest.fixture
def spawn(tmp_path):
    spawner = Spawner(tmp_path / "services")
    yield spawner
    spawner.close()


@pytest.fixture(scope="module")
def spawn_module(tmp_path_factory):
    spawner = Spawner(tmp_path_factory.mktemp("services"))
    yield spawner
    spawner.close()


def run_config(env, args=(), timeout=30):
    """Run the program expecting it to exit at startup; return (rc, stdout lines, stderr)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full.update({k: str(v) for k, v in env.items() if v is not None})
    proc = subprocess.run([PYTHON, str(SERVICE), *args], env=full, capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    return proc.returncode, proc.stdout.decode("utf-8").splitlines(), proc.stderr.decode("utf-8")


@pytest.fixture(scope="session")
def seo():
    """The service program imported as a module (for protocol-level tests)."""
    spec = importlib.util.spec_from_file_location("seo_service_under_test", SERVICE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- redis

def _find_binary(name, extra=()):
    found = shutil.which(name)
    if found:
        return found
    for candidate in extra:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


REDIS_SERVER = _find_binary("redis-server", ["/usr/bin/redis-server", "/usr/local/bin/redis-server"])


def resp_command(port, *args, timeout=5.0):
    """Independent one-shot RESP2 call (the test's own client, not the service's)."""
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x if isinstance(x, bytes) else str(x).encode() for x in args))
    with socket.create_connection((LOCAL, port), timeout=timeout) as sock:
        sock.sendall(payload)
        reader = sock.makefile("rb")
        return _resp_read(reader)


def _resp_read(reader):
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else reader.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(reader) for _element in range(n)]
    raise AssertionError("bad RESP reply %r" % line)


class RedisServer:
    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = LOCAL
        self.proc = None
        self.started_once = False

    def start(self):
        # Before the first start the port may move (it was taken meanwhile); a restart keeps it.
        for attempt in range(5):
            log = open(self.workdir / "redis.log", "ab")
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", LOCAL, "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir), "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            if wait_for(self._ours_or_dead, 15, 0.05, "redis-server on port %d" % self.port) == "ours":
                self.started_once = True
                return self
            if self.started_once or attempt == 4:
                raise AssertionError("redis-server could not listen on %d:\n%s" % (
                    self.port, (self.workdir / "redis.log").read_text(errors="replace")[-2000:]))
            self.port = free_port()  # the free port was taken meanwhile
        return self

    def _ours_or_dead(self):
        if self.proc.poll() is not None:
            return "dead"
        # make sure the redis answering is this process (identified by its working directory)
        reply = self.cmd("CONFIG", "GET", "dir")
        return "ours" if reply == [b"dir", str(self.workdir.resolve()).encode()] else None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None

    def cmd(self, *args):
        return resp_command(self.port, *args)


def _require_redis():
    if REDIS_SERVER is None:
        # A real dependency: missing, the test command fails rather than skips.
        pytest.fail("redis-server binary not found: install the Debian package redis-server "
                    "(apt-get install -y redis-server)")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    _require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of the test's own, free to be stopped or flushed."""
    _require_redis()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


# ----------------------------------------------------------------------------- PostgreSQL

def _pg_bindir():
    env = os.environ.get("SEO_TEST_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                         reverse=True)
    for path in candidates:
        if path and os.access(os.path.join(path, "postgres"), os.X_OK) and \
                os.access(os.path.join(path, "initdb"), os.X_OK):
            return path
    pg_config = shutil.which("pg_config")
    if pg_config:
        path = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if os.access(os.path.join(path, "postgres"), os.X_OK):
            return path
    return None


PG_BINDIR = _pg_bindir()
PSQL = (os.path.join(PG_BINDIR, "psql") if PG_BINDIR and os.access(os.path.join(PG_BINDIR, "psql"), os.X_OK)
        else shutil.which("psql"))
_PG_HBA = """\
local all all trust
host all seo_trust 127.0.0.1/32 trust
host all seo_clear 127.0.0.1/32 password
host all seo_md5 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
"""


class PgServer:
    """initdb + postgres, run as an unprivileged user when the tests run as root."""

    def __init__(self, workdir):
        self.root = Path(tempfile.mkdtemp(prefix="seo-pg-", dir=str(workdir)))
        self.data = self.root / "data"
        self.port = free_port()
        self.host = LOCAL
        self.proc = None
        self.started_once = False
        self.prefix = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: drop to nobody for initdb and postgres.
            self.prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            os.chown(self.root, 65534, 65534)
            os.chmod(workdir, 0o755)

    def init(self):
        pwfile = self.root / "pwfile"
        pwfile.write_text(PG_SUPER_PASSWORD + "\n")
        if self.prefix:
            os.chown(pwfile, 65534, 65534)
        subprocess.run(self.prefix + [os.path.join(PG_BINDIR, "initdb"), "-D", str(self.data), "-U", "postgres",
                                      "--auth=scram-sha-256", "--pwfile=" + str(pwfile), "-E", "UTF8",
                                      "--no-locale", "-N"],
                       check=True, capture_output=True, timeout=120)
        (self.data / "pg_hba.conf").write_text(_PG_HBA)
        return self

    def start(self):
        # Before the first start the port may move (it was taken meanwhile); a restart keeps it.
        for attempt in range(5):
            log = open(self.root / "postgres.log", "ab")
            if self.prefix:
                os.chown(self.root / "postgres.log", 65534, 65534)
            self.proc = subprocess.Popen(
                self.prefix + [os.path.join(PG_BINDIR, "postgres"), "-D", str(self.data), "-p", str(self.port),
                               "-k", str(self.root), "-c", "listen_addresses=" + LOCAL, "-c", "fsync=off",
                               "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                               "-c", "shared_buffers=16MB", "-c", "max_connections=60"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            if wait_for(self._ours_or_dead, 30, 0.1, "postgres on port %d" % self.port) == "ours":
                self.started_once = True
                return self
            if self.started_once or attempt == 4:
                raise AssertionError("postgres could not start on %d:\n%s" % (
                    self.port, (self.root / "postgres.log").read_text(errors="replace")[-2000:]))
            self.port = free_port()
        return self

    def _ours_or_dead(self):
        if self.proc.poll() is not None:
            return "dead"
        # make sure the postgres answering is this one (identified by its data directory)
        return "ours" if self.psql("SHOW data_directory") == str(self.data) else None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def psql(self, sql, db="postgres", user="postgres", password=PG_SUPER_PASSWORD):
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
        proc = subprocess.run([PSQL, "-h", LOCAL, "-p", str(self.port), "-U", user, "-d", db, "-At", "-X",
                               "-v", "ON_ERROR_STOP=1", "-c", sql],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError("psql failed: %s" % proc.stderr.strip())
        return proc.stdout.strip()

    def setup_roles(self):
        for user, (password, method) in PG_USERS.items():
            if method == "md5":
                self.psql("SET password_encryption = 'md5'; CREATE ROLE %s LOGIN PASSWORD '%s'" % (user, password))
            elif password:
                self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (user, password))
            else:
                self.psql("CREATE ROLE %s LOGIN" % user)
        return self

    def create_db(self, name, owner="seo"):
        self.psql("CREATE DATABASE %s OWNER %s" % (name, owner))
        return name

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _require_pg():
    if PG_BINDIR is None or PSQL is None:
        pytest.fail("PostgreSQL server binaries not found: install the Debian package postgresql-15 "
                    "(or set SEO_TEST_PG_BINDIR)")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.fail("running as root needs setpriv (util-linux) to start postgres as nobody")


def _pg_workdir():
    base = Path(tempfile.mkdtemp(prefix="seo-pg-root-"))
    os.chmod(base, 0o755)
    return base


@pytest.fixture(scope="session")
def pg_server():
    _require_pg()
    base = _pg_workdir()
    server = PgServer(base).init().start().setup_roles()
    yield server
    server.destroy()
    shutil.rmtree(base, ignore_errors=True)


_DB_COUNTER = [0]
_DB_LOCK = threading.Lock()


def new_db(server, owner="seo"):
    with _DB_LOCK:
        _DB_COUNTER[0] += 1
        name = "seo_t%d_%d" % (os.getpid(), _DB_COUNTER[0])
    return server.create_db(name, owner)


@pytest.fixture(scope="session")
def _spare_pg():
    _require_pg()
    base = _pg_workdir()
    server = PgServer(base).init().start().setup_roles()
    yield server
    server.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def own_pg(_spare_pg):
    """A PostgreSQL that the test may stop and start (running again after the test)."""
    if _spare_pg.proc is None:
        _spare_pg.start()
    yield _spare_pg
    if _spare_pg.proc is None:
        _spare_pg.start()


def backend_env(pg, redis, rank_url, db, user="seo", password=None, api_key=API_KEY, **extra):
    env = {
        "SEO_DB_HOST": pg.host, "SEO_DB_PORT": pg.port, "SEO_DB_NAME": db, "SEO_DB_USER": user,
        "SEO_DB_PASSWORD": password if password is not None else PG_USERS[user][0] or "unused",
        "SEO_REDIS_HOST": redis.host if redis is not None else LOCAL,
        "SEO_REDIS_PORT": redis.port if redis is not None else closed_port(),
        "SEO_RANK_API_URL": rank_url, "SEO_API_KEY": api_key,
    }
    env.update(extra)
    return env


def gateway_env(backend_urls, data_dir, key=API_KEY, **extra):
    if not isinstance(backend_urls, str):
        backend_urls = ",".join(backend_urls)
    env = {"SEO_BACKEND_URLS": backend_urls, "SEO_BACKEND_API_KEY": key, "SEO_DATA_DIR": str(data_dir)}
    env.update(extra)
    return env


def stub_rank(keyword):
    """The rank the rank-api stub must give (independent re-implementation)."""
    import hashlib
    digest = hashlib.sha256(keyword.encode("utf-8")).digest()
    return digest[0] % 100 + 1


# ----------------------------------------------------------------------------- shared stacks

@pytest.fixture(scope="module")
def rank_api(spawn_module):
    return spawn_module("rank-api")


@pytest.fixture(scope="module")
def backend_db(pg_server):
    return new_db(pg_server)


@pytest.fixture(scope="module")
def backend(spawn_module, pg_server, redis_server, rank_api, backend_db):
    return spawn_module("backend-api", backend_env(pg_server, redis_server, rank_api.url, backend_db))
