#!/usr/bin/env python3
"""opsdrill SEO tool: one stdlib-only program that runs every service of the drill stack.

Roles (SEO_ROLE or --role): backend-api, api-gateway, frontend, worker, rank-api, traffic.
Interface: docs/contracts.md section 1; reference: docs/seo-service.md.

Runs on Python 3.11 and 3.12 with the standard library only. backend-api talks to
PostgreSQL (v3 simple-query protocol; SCRAM-SHA-256, md5, cleartext and trust auth) and
redis (RESP2) with the minimal clients below.
"""

import base64
import hashlib
import hmac
import html
import http.client
import json
import math
import os
import queue
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.0.0"
ROLES = ("backend-api", "api-gateway", "frontend", "worker", "rank-api", "traffic")
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
ROUTE_NAMES = ("rank", "keywords", "report")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ERROR_WINDOW_S = 60
MAX_BODY = 64 * 1024
JOURNAL_NAME = "requests.log"
JOURNAL_MAX_BYTES = 5 * 1024 * 1024
BACKEND_CACHE_TTL_S = 60
GATEWAY_CACHE_TTL_S = 30
KEYWORD_MAX_LEN = 100
SEED_KEYWORDS = (
    "seo tools", "keyword research", "rank tracker", "backlink checker", "site audit",
    "local seo", "content marketing", "serp api",
)
TRAFFIC_KEYWORDS = (
    "seo tools", "keyword research", "rank tracker", "backlink checker", "site audit",
    "local seo", "content marketing", "serp api", "page speed", "meta description",
    "schema markup", "voice search", "mobile first indexing", "e-commerce seo",
    "kubernetes monitoring", "caf\u00e9 marketing", "seo & sem", "what is seo?",
    "100% organic", "c++ tutorial",
)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# --------------------------------------------------------------------------- logging

def _now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class Logger:
    """JSON-lines logger on stdout: {"ts","level","service","msg",...}."""

    def __init__(self):
        self.service = "seo-service"
        self.threshold = LEVELS["INFO"]
        self._lock = threading.Lock()

    def log(self, level, msg, **fields):
        if LEVELS[level] < self.threshold:
            return
        rec = {"ts": _now_iso(), "level": level, "service": self.service, "msg": msg}
        for key, value in fields.items():
            if key not in rec and value is not None:
                rec[key] = value
        try:
            line = json.dumps(rec, default=str)
        except (TypeError, ValueError):
            line = json.dumps({"ts": rec["ts"], "level": level, "service": self.service, "msg": str(msg)})
        with self._lock:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass

    def debug(self, msg, **fields):
        self.log("DEBUG", msg, **fields)

    def info(self, msg, **fields):
        self.log("INFO", msg, **fields)

    def warning(self, msg, **fields):
        self.log("WARNING", msg, **fields)

    def error(self, msg, **fields):
        self.log("ERROR", msg, **fields)


LOG = Logger()


# --------------------------------------------------------------------------- configuration

class ConfigError(Exception):
    def __init__(self, var, value, allowed, secret=False):
        self.var = var
        self.value = value
        self.allowed = allowed
        self.secret = secret
        super().__init__(self.message())

    def shown_value(self):
        if self.value is None:
            return "<unset>"
        if self.secret:
            return "<redacted>"
        return repr(self.value)

    def message(self):
        return "config error: %s=%s: %s" % (self.var, self.shown_value(), self.allowed)


class Config:
    def __repr__(self):
        return "Config(%r)" % self.__dict__


_HOST_RE = re.compile(r"^[A-Za-z0-9._\[\]:-]+$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
KNOWN_VARS = {
    "SEO_ROLE", "SEO_PORT", "SEO_LOG_LEVEL", "SEO_LISTEN_HOST", "SEO_VERSION",
    "SEO_DB_HOST", "SEO_DB_PORT", "SEO_DB_NAME", "SEO_DB_USER", "SEO_DB_PASSWORD",
    "SEO_DB_PASSWORD_FILE", "SEO_REDIS_HOST", "SEO_REDIS_PORT", "SEO_RANK_API_URL",
    "SEO_RANK_API_TIMEOUT_S", "SEO_API_KEY", "SEO_BACKEND_URLS", "SEO_BACKEND_API_KEY",
    "SEO_UPSTREAM_TIMEOUT_S", "SEO_RATE_LIMIT_RPS", "SEO_RATE_LIMIT_STATUS", "SEO_ROUTES",
    "SEO_DATA_DIR", "SEO_GATEWAY_URL", "SEO_TRAFFIC_RPS", "SEO_TRAFFIC_CONCURRENCY",
    "SEO_TRAFFIC_KEYWORDS", "SEO_WORKER_INTERVAL_S", "SEO_FAULT_ERROR_SHARE",
    "SEO_FAULT_LATENCY_MS", "SEO_FAULT_EXCEPTION_INPUTS", "SEO_FAULT_LEAK_KB_PER_REQUEST",
    "SEO_FAULT_RACE", "SEO_FAULT_STARTUP_MEMORY_MB", "SEO_FAULT_CACHE_POISON",
}


class Env:
    """Typed, strict access to the environment. Empty values count as unset."""

    def __init__(self, environ, role):
        self.environ = environ
        self.role = role

    def raw(self, name, strip=True):
        value = self.environ.get(name)
        if value is None:
            return None
        if strip:
            value = value.strip()
        return value if value.strip() != "" else None

    def required(self, name, what, secret=False):
        value = self.raw(name, strip=not secret)
        if value is None:
            raise ConfigError(name, None, "required for role %s: %s" % (self.role, what), secret)
        return value

    def host(self, name, required=True):
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(name, None, "required for role %s: a host name or IP address" % self.role)
            return None
        if not _HOST_RE.match(value):
            raise ConfigError(name, value, "must be a host name or IP address")
        return value

    def integer(self, name, default, lo, hi):
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(name, value, "must be an integer between %d and %d" % (lo, hi)) from None
        if not lo <= number <= hi:
            raise ConfigError(name, value, "must be an integer between %d and %d" % (lo, hi))
        return number

    def number(self, name, default, lo, hi, lo_exclusive=False):
        value = self.raw(name)
        if value is None:
            return default
        low = ("greater than %g" % lo) if lo_exclusive else ("at least %g" % lo)
        allowed = "must be a number %s and at most %g" % (low, hi)
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, value, allowed) from None
        if not math.isfinite(number):
            raise ConfigError(name, value, allowed)
        if number > hi or number < lo or (lo_exclusive and number == lo):
            raise ConfigError(name, value, allowed)
        return number

    def boolean(self, name, default=False):
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(name, value, "must be true or false (also 1/0, yes/no, on/off)")

    def choice(self, name, default, choices):
        value = self.raw(name)
        if value is None:
            return default
        if value.upper() in choices:
            return value.upper()
        raise ConfigError(name, value, "must be one of " + ", ".join(choices))

    def url(self, name, required=True):
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(name, None, "required for role %s: an http://host[:port] URL" % self.role)
            return None
        return _check_url(name, value)

    def url_list(self, name):
        value = self.raw(name)
        if value is None:
            raise ConfigError(name, None,
                              "required for role %s: comma-separated http://host[:port] URLs" % self.role)
        urls = [part.strip() for part in value.split(",")]
        if any(not part for part in urls):
            raise ConfigError(name, value, "must be comma-separated http://host[:port] URLs without empty items")
        return [_check_url(name, part, whole=value) for part in urls]

    def regex(self, name):
        value = self.raw(name, strip=False)
        if value is None:
            return None
        try:
            return re.compile(value)
        except re.error as exc:
            raise ConfigError(name, value, "must be a valid regular expression (%s)" % exc) from None


def _check_url(name, value, whole=None):
    allowed = "must be an http://host[:port] URL (optionally with a path)"
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError:
        raise ConfigError(name, whole or value, allowed) from None
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(name, whole or value, allowed)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(name, whole or value, allowed)
    return value.rstrip("/")


def _parse_argv(argv):
    role = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--role" and args:
            role = args.pop(0)
        elif arg.startswith("--role="):
            role = arg.split("=", 1)[1]
        else:
            raise ConfigError("argv", arg, "the only accepted argument is --role ROLE (roles: %s)" % ", ".join(ROLES))
    return role


def load_config(environ, argv=()):
    role_arg = _parse_argv(argv)
    role_var = "--role" if role_arg is not None else "SEO_ROLE"
    role = role_arg if role_arg is not None else (environ.get("SEO_ROLE") or "").strip() or None
    if role is None:
        raise ConfigError("SEO_ROLE", None, "required: one of " + ", ".join(ROLES))
    if role not in ROLES:
        raise ConfigError(role_var, role, "must be one of " + ", ".join(ROLES))
    env = Env(environ, role)
    cfg = Config()
    cfg.role = role
    cfg.port = env.integer("SEO_PORT", 8080, 1, 65535)
    cfg.log_level = env.choice("SEO_LOG_LEVEL", "INFO", tuple(LEVELS))
    cfg.listen_host = env.host("SEO_LISTEN_HOST", required=False) or "0.0.0.0"
    cfg.version = env.raw("SEO_VERSION") or VERSION
    # fault knobs: validated for every role, all off by default
    cfg.fault_error_share = env.number("SEO_FAULT_ERROR_SHARE", 0.0, 0.0, 1.0)
    cfg.fault_latency_ms = env.integer("SEO_FAULT_LATENCY_MS", 0, 0, 600000)
    cfg.fault_exception_inputs = env.regex("SEO_FAULT_EXCEPTION_INPUTS")
    cfg.fault_leak_kb = env.integer("SEO_FAULT_LEAK_KB_PER_REQUEST", 0, 0, 1048576)
    cfg.fault_race = env.boolean("SEO_FAULT_RACE")
    cfg.fault_startup_memory_mb = env.integer("SEO_FAULT_STARTUP_MEMORY_MB", 0, 0, 65536)
    cfg.fault_cache_poison = env.boolean("SEO_FAULT_CACHE_POISON")

    if role == "backend-api":
        cfg.db_host = env.host("SEO_DB_HOST")
        cfg.db_port = env.integer("SEO_DB_PORT", 5432, 1, 65535)
        cfg.db_name = env.required("SEO_DB_NAME", "the PostgreSQL database name")
        cfg.db_user = env.required("SEO_DB_USER", "the PostgreSQL user")
        cfg.db_password = _load_db_password(env)
        cfg.redis_host = env.host("SEO_REDIS_HOST")
        cfg.redis_port = env.integer("SEO_REDIS_PORT", 6379, 1, 65535)
        cfg.rank_api_url = env.url("SEO_RANK_API_URL")
        cfg.rank_api_timeout = env.number("SEO_RANK_API_TIMEOUT_S", 2.0, 0.0, 300.0, lo_exclusive=True)
        cfg.api_key = env.required("SEO_API_KEY", "the key callers must send in X-Api-Key", secret=True)
    elif role == "api-gateway":
        cfg.backend_urls = env.url_list("SEO_BACKEND_URLS")
        cfg.backend_api_key = env.required("SEO_BACKEND_API_KEY", "the key sent to the backend as X-Api-Key",
                                           secret=True)
        cfg.upstream_timeout = env.number("SEO_UPSTREAM_TIMEOUT_S", 3.0, 0.0, 300.0, lo_exclusive=True)
        cfg.rate_limit_rps = env.number("SEO_RATE_LIMIT_RPS", 0.0, 0.0, 100000.0)
        cfg.rate_limit_status = env.integer("SEO_RATE_LIMIT_STATUS", 503, 400, 599)
        routes_raw = env.raw("SEO_ROUTES")
        if routes_raw is None:
            cfg.routes = set(ROUTE_NAMES)
        else:
            names = [part.strip() for part in routes_raw.split(",")]
            if any(name not in ROUTE_NAMES for name in names):
                raise ConfigError("SEO_ROUTES", routes_raw,
                                  "must be a comma list of route names from: " + ", ".join(ROUTE_NAMES))
            cfg.routes = set(names)
        data_dir = env.required("SEO_DATA_DIR", "an absolute directory path for the request journal")
        if not data_dir.startswith("/"):
            raise ConfigError("SEO_DATA_DIR", data_dir, "must be an absolute directory path")
        cfg.data_dir = data_dir
        cfg.redis_host = env.host("SEO_REDIS_HOST", required=False)
        cfg.redis_port = env.integer("SEO_REDIS_PORT", 6379, 1, 65535)
        if cfg.fault_cache_poison and not cfg.redis_host:
            raise ConfigError("SEO_FAULT_CACHE_POISON", env.raw("SEO_FAULT_CACHE_POISON"),
                              "needs SEO_REDIS_HOST (the response cache) on role api-gateway")
    elif role == "frontend":
        cfg.gateway_url = env.url("SEO_GATEWAY_URL")
        cfg.upstream_timeout = env.number("SEO_UPSTREAM_TIMEOUT_S", 5.0, 0.0, 300.0, lo_exclusive=True)
    elif role == "worker":
        cfg.backend_urls = env.url_list("SEO_BACKEND_URLS")
        cfg.backend_api_key = env.required("SEO_BACKEND_API_KEY", "the key sent to the backend as X-Api-Key",
                                           secret=True)
        cfg.worker_interval = env.number("SEO_WORKER_INTERVAL_S", 10.0, 0.0, 86400.0, lo_exclusive=True)
        cfg.upstream_timeout = env.number("SEO_UPSTREAM_TIMEOUT_S", 5.0, 0.0, 300.0, lo_exclusive=True)
    elif role == "traffic":
        cfg.gateway_url = env.url("SEO_GATEWAY_URL")
        cfg.traffic_rps = env.number("SEO_TRAFFIC_RPS", 5.0, 0.0, 1000.0, lo_exclusive=True)
        cfg.traffic_concurrency = env.integer("SEO_TRAFFIC_CONCURRENCY", 4, 1, 256)
        cfg.upstream_timeout = env.number("SEO_UPSTREAM_TIMEOUT_S", 5.0, 0.0, 300.0, lo_exclusive=True)
        kw_raw = env.raw("SEO_TRAFFIC_KEYWORDS")
        if kw_raw is None:
            cfg.traffic_keywords = list(TRAFFIC_KEYWORDS)
        else:
            kws = [part.strip() for part in kw_raw.split(",")]
            if any(not kw or len(kw) > KEYWORD_MAX_LEN for kw in kws):
                raise ConfigError("SEO_TRAFFIC_KEYWORDS", kw_raw,
                                  "must be a comma list of non-empty keywords of at most %d characters"
                                  % KEYWORD_MAX_LEN)
            cfg.traffic_keywords = kws
    return cfg


def _load_db_password(env):
    password = env.raw("SEO_DB_PASSWORD", strip=False)
    path = env.raw("SEO_DB_PASSWORD_FILE")
    if password is not None and path is not None:
        raise ConfigError("SEO_DB_PASSWORD_FILE", path, "set only one of SEO_DB_PASSWORD and SEO_DB_PASSWORD_FILE")
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                password = handle.read().rstrip("\r\n")
        except (OSError, ValueError) as exc:
            raise ConfigError("SEO_DB_PASSWORD_FILE", path,
                              "cannot read it (%s: %s); must be a readable file holding the password"
                              % (type(exc).__name__, exc)) from None
        if password == "":
            raise ConfigError("SEO_DB_PASSWORD_FILE", path, "the file is empty; it must hold the password")
        return password
    if password is None:
        raise ConfigError("SEO_DB_PASSWORD", None,
                          "required for role backend-api: set SEO_DB_PASSWORD or SEO_DB_PASSWORD_FILE",
                          secret=True)
    return password


# --------------------------------------------------------------------------- dependency errors

class ProtocolError(Exception):
    """The peer sent something this client does not understand."""


class PgError(Exception):
    """An ErrorResponse from PostgreSQL."""

    UNAVAILABLE_CLASSES = ("08", "28", "3D", "53", "57")

    def __init__(self, fields, fatal=False):
        self.fields = fields
        self.code = fields.get("C", "")
        self.severity = fields.get("V") or fields.get("S", "ERROR")
        self.fatal = fatal or self.severity in ("FATAL", "PANIC")
        super().__init__(fields.get("M", "postgres error"))

    @property
    def unavailable(self):
        return self.code[:2] in self.UNAVAILABLE_CLASSES


class RedisError(Exception):
    """An error reply (-ERR ...) from redis."""


def describe_failure(exc):
    """(outcome, human reason) for a failed outgoing call."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", "timed out"
    if isinstance(exc, socket.gaierror):
        return "error", "cannot resolve host (%s)" % (exc.strerror or exc)
    if isinstance(exc, (PgError, RedisError)):
        return "error", str(exc)
    if isinstance(exc, OSError):
        return "error", exc.strerror or str(exc) or type(exc).__name__
    return "error", "%s: %s" % (type(exc).__name__, exc)


def _read_exact(rfile, n):
    data = rfile.read(n)
    if data is None or len(data) < n:
        raise ConnectionResetError("server closed the connection")
    return data


# --------------------------------------------------------------------------- PostgreSQL client

def sql_literal(value):
    """Quote a value as an escape-string literal; safe whatever standard_conforming_strings is."""
    text = str(value)
    if "\x00" in text:
        raise ValueError("NUL byte in SQL literal")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


class PgResult:
    def __init__(self, columns, rows, tag):
        self.columns = columns
        self.rows = rows
        self.tag = tag

    def __repr__(self):
        return "PgResult(%r, %r, %r)" % (self.columns, self.rows, self.tag)


class PgConnection:
    """Minimal PostgreSQL frontend/backend protocol v3 client (simple query only)."""

    def __init__(self, host, port, user, password, database, connect_timeout=3.0, timeout=5.0,
                 application_name="seo-service"):
        self.user = user
        self.password = password
        self.params = {}
        self.tx_status = b"I"
        self.auth_method = None
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            self.sock.settimeout(timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.rfile = self.sock.makefile("rb")
            self._startup(database, application_name)
        except BaseException:
            self.close()
            raise

    # framing
    def _send(self, mtype, payload):
        self.sock.sendall(mtype + struct.pack("!I", len(payload) + 4) + payload)

    def _recv(self):
        header = _read_exact(self.rfile, 5)
        mtype = header[:1]
        length = struct.unpack("!I", header[1:])[0]
        if length < 4 or length > 256 * 1024 * 1024:
            raise ProtocolError("bad message length %d" % length)
        return mtype, _read_exact(self.rfile, length - 4)

    @staticmethod
    def _parse_error(body):
        fields = {}
        for part in body.split(b"\x00"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return fields

    # startup + authentication
    def _startup(self, database, application_name):
        params = b""
        for key, value in (("user", self.user), ("database", database),
                           ("application_name", application_name), ("client_encoding", "UTF8")):
            params += key.encode() + b"\x00" + value.encode("utf-8") + b"\x00"
        payload = struct.pack("!I", 196608) + params + b"\x00"
        self.sock.sendall(struct.pack("!I", len(payload) + 4) + payload)
        while True:
            mtype, body = self._recv()
            if mtype == b"R":
                self._authenticate(body)
            elif mtype == b"E":
                raise PgError(self._parse_error(body), fatal=True)
            elif mtype == b"S":
                parts = body.split(b"\x00")
                if len(parts) >= 2:
                    self.params[parts[0].decode("utf-8", "replace")] = parts[1].decode("utf-8", "replace")
            elif mtype == b"Z":
                self.tx_status = body[:1]
                return
            elif mtype in (b"K", b"N"):
                continue
            else:
                raise ProtocolError("unexpected message %r during startup" % mtype)

    def _password_message(self, data):
        self._send(b"p", data)

    def _authenticate(self, body):
        code = struct.unpack("!I", body[:4])[0]
        if code == 0:
            self.auth_method = self.auth_method or "trust"
            return
        if code == 3:
            self.auth_method = "password"
            self._password_message(self.password.encode("utf-8") + b"\x00")
        elif code == 5:
            self.auth_method = "md5"
            salt = body[4:8]
            inner = hashlib.md5(self.password.encode("utf-8") + self.user.encode("utf-8")).hexdigest()
            outer = hashlib.md5(inner.encode("ascii") + salt).hexdigest()
            self._password_message(b"md5" + outer.encode("ascii") + b"\x00")
        elif code == 10:
            mechanisms = [m.decode() for m in body[4:].split(b"\x00") if m]
            if "SCRAM-SHA-256" not in mechanisms:
                raise ProtocolError("no supported SASL mechanism in %s" % mechanisms)
            self.auth_method = "scram-sha-256"
            self._scram_sha_256()
        else:
            raise ProtocolError("unsupported authentication request %d" % code)

    def _expect_auth(self, expected_code):
        mtype, body = self._recv()
        if mtype == b"E":
            raise PgError(self._parse_error(body), fatal=True)
        if mtype != b"R":
            raise ProtocolError("expected authentication message, got %r" % mtype)
        code = struct.unpack("!I", body[:4])[0]
        if code != expected_code:
            raise ProtocolError("expected SASL step %d, got %d" % (expected_code, code))
        return body[4:]

    def _scram_sha_256(self):
        nonce = base64.b64encode(os.urandom(18)).decode("ascii")
        client_first_bare = "n=,r=" + nonce
        client_first = ("n,," + client_first_bare).encode("ascii")
        self._password_message(b"SCRAM-SHA-256\x00" + struct.pack("!i", len(client_first)) + client_first)
        server_first = self._expect_auth(11).decode("utf-8")
        attrs = dict(item.split("=", 1) for item in server_first.split(",") if "=" in item)
        server_nonce = attrs.get("r", "")
        if not server_nonce.startswith(nonce):
            raise ProtocolError("SCRAM server nonce does not extend the client nonce")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode("utf-8"), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        client_final_bare = "c=biws,r=" + server_nonce
        auth_message = ",".join((client_first_bare, server_first, client_final_bare)).encode("utf-8")
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = client_final_bare + ",p=" + base64.b64encode(proof).decode("ascii")
        self._password_message(final.encode("ascii"))
        server_final = self._expect_auth(12).decode("utf-8")
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expected = base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
        if server_final.startswith("e="):
            raise ProtocolError("SCRAM error from server: " + server_final[2:])
        if not hmac.compare_digest(server_final.split("v=", 1)[-1].split(",")[0], expected):
            raise ProtocolError("SCRAM server signature mismatch")

    # queries
    def query_all(self, sql):
        """Run one simple query (may hold several statements); return every PgResult."""
        self._send(b"Q", sql.encode("utf-8") + b"\x00")
        results = []
        columns, rows, error = None, [], None
        while True:
            try:
                mtype, body = self._recv()
            except (OSError, ConnectionError):
                if error is not None:
                    error.fatal = True
                    raise error from None
                raise
            if mtype == b"T":
                count = struct.unpack("!H", body[:2])[0]
                pos, columns = 2, []
                for _column in range(count):
                    end = body.index(b"\x00", pos)
                    columns.append(body[pos:end].decode("utf-8"))
                    pos = end + 1 + 18
                rows = []
            elif mtype == b"D":
                count = struct.unpack("!H", body[:2])[0]
                pos, row = 2, []
                for _column in range(count):
                    length = struct.unpack("!i", body[pos:pos + 4])[0]
                    pos += 4
                    if length < 0:
                        row.append(None)
                    else:
                        row.append(body[pos:pos + length].decode("utf-8"))
                        pos += length
                rows.append(tuple(row))
            elif mtype == b"C":
                results.append(PgResult(columns or [], rows, body.rstrip(b"\x00").decode()))
                columns, rows = None, []
            elif mtype == b"I":
                results.append(PgResult([], [], ""))
            elif mtype == b"E":
                error = PgError(self._parse_error(body))
            elif mtype == b"Z":
                self.tx_status = body[:1]
                break
            elif mtype in (b"N", b"S", b"A"):
                continue
            else:
                raise ProtocolError("unexpected message %r" % mtype)
        if error is not None:
            raise error
        return results

    def query(self, sql):
        results = self.query_all(sql)
        return results[-1] if results else PgResult([], [], "")

    @property
    def reusable(self):
        return self.tx_status == b"I"

    def close(self):
        try:
            self.sock.sendall(b"X\x00\x00\x00\x04")
        except OSError:
            pass
        for obj in (getattr(self, "rfile", None), self.sock):
            try:
                if obj is not None:
                    obj.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- redis client

class RedisConnection:
    """Minimal RESP2 client."""

    def __init__(self, host, port, connect_timeout=2.0, timeout=3.0):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")
        self.reusable = True

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            if isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, str):
                data = arg.encode("utf-8")
            else:
                data = str(arg).encode("ascii")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    def command(self, *args):
        self.sock.sendall(self.encode(args))
        reply = self._read_reply()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def _read_reply(self):
        line = self.rfile.readline(1024 * 1024)
        if not line:
            raise ConnectionResetError("redis closed the connection")
        if not line.endswith(b"\r\n"):
            raise ProtocolError("malformed RESP line")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = _read_exact(self.rfile, length + 2)
            return data[:-2]
        if kind == b"*":
            length = int(rest)
            if length < 0:
                return None
            return [self._read_reply() for _element in range(length)]
        raise ProtocolError("unknown RESP type %r" % kind)

    def close(self):
        for obj in (self.rfile, self.sock):
            try:
                obj.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- connection pool

class Pool:
    """A few idle connections; broken ones are dropped, a stale pooled one is retried once."""

    def __init__(self, factory, max_idle=4):
        self.factory = factory
        self.max_idle = max_idle
        self._idle = []
        self._lock = threading.Lock()

    def run(self, fn):
        for attempt in (0, 1):
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            fresh = conn is None
            if fresh:
                conn = self.factory()
            try:
                result = fn(conn)
            except (PgError, RedisError) as exc:
                if getattr(exc, "fatal", False) or not conn.reusable:
                    conn.close()
                    if getattr(exc, "fatal", False) and not fresh and attempt == 0:
                        continue
                else:
                    self._put(conn)
                raise
            except (OSError, ProtocolError) as exc:
                conn.close()
                if fresh or attempt == 1 or isinstance(exc, TimeoutError):
                    raise
                continue
            except BaseException:
                conn.close()
                raise
            self._put(conn)
            return result
        raise ConnectionError("unreachable")  # pragma: no cover

    def _put(self, conn):
        if not conn.reusable:
            conn.close()
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close_all(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


# --------------------------------------------------------------------------- metrics

def _esc(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(pairs):
    return "{" + ",".join('%s="%s"' % (key, _esc(value)) for key, value in pairs) + "}"


def _num(value):
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def rss_bytes():
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        try:
            import resource  # noqa: PLC0415 (fallback only)
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except Exception:  # pragma: no cover
            return 0


class RequestStats:
    """Counter + histogram by route, and a 60 s sliding window for the error rate."""

    def __init__(self, service, prefix, rate_name, rate_help, errors_name=None):
        self.service = service
        self.errors_name = errors_name
        self.prefix = prefix
        self.rate_name = rate_name
        self.rate_help = rate_help
        self._lock = threading.Lock()
        self.requests = {}
        self.hist = {}
        self.window = {}

    def observe(self, route, code, seconds, failed, in_window=True):
        now = int(time.time())
        with self._lock:
            key = (route, str(code))
            self.requests[key] = self.requests.get(key, 0) + 1
            entry = self.hist.get(route)
            if entry is None:
                entry = self.hist[route] = [[0] * (len(BUCKETS) + 1), 0.0, 0]
            index = len(BUCKETS)
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    index = i
                    break
            entry[0][index] += 1
            entry[1] += seconds
            entry[2] += 1
            if in_window:
                slot = self.window.get(now)
                if slot is None:
                    slot = self.window[now] = [0, 0]
                    for old in [k for k in self.window if k <= now - ERROR_WINDOW_S]:
                        del self.window[old]
                slot[0] += 1
                if failed:
                    slot[1] += 1

    def error_rate(self):
        now = int(time.time())
        total = errors = 0
        with self._lock:
            for second, (count, failed) in self.window.items():
                if second > now - ERROR_WINDOW_S:
                    total += count
                    errors += failed
        return (errors / total) if total else 0.0

    def render(self, out, req_help, dur_help):
        svc = self.service
        with self._lock:
            requests = sorted(self.requests.items())
            hist = sorted((route, [list(e[0]), e[1], e[2]]) for route, e in self.hist.items())
        name = self.prefix + "_requests_total"
        out.append("# HELP %s %s" % (name, req_help))
        out.append("# TYPE %s counter" % name)
        for (route, code), count in requests:
            out.append("%s%s %d" % (name, _labels((("service", svc), ("route", route), ("code", code))), count))
        name = self.prefix + "_request_duration_seconds"
        out.append("# HELP %s %s" % (name, dur_help))
        out.append("# TYPE %s histogram" % name)
        for route, (counts, total, count) in hist:
            cumulative = 0
            for bound, n in zip(BUCKETS + ("+Inf",), counts):
                cumulative += n
                le = bound if isinstance(bound, str) else _num(bound)
                labels = _labels((("service", svc), ("route", route), ("le", le)))
                out.append("%s_bucket%s %d" % (name, labels, cumulative))
            out.append("%s_sum%s %s" % (name, _labels((("service", svc), ("route", route))), _num(total)))
            out.append("%s_count%s %d" % (name, _labels((("service", svc), ("route", route))), count))
        if self.errors_name:
            out.append("# HELP %s %s" % (self.errors_name, "5xx responses, by route template and status code."))
            out.append("# TYPE %s counter" % self.errors_name)
            for (route, code), count in requests:
                if code.isdigit() and int(code) >= 500:
                    labels = _labels((("service", svc), ("route", route), ("code", code)))
                    out.append("%s%s %d" % (self.errors_name, labels, count))
        out.append("# HELP %s %s" % (self.rate_name, self.rate_help))
        out.append("# TYPE %s gauge" % self.rate_name)
        out.append("%s%s %s" % (self.rate_name, _labels((("service", svc),)), _num(self.error_rate())))


class Metrics:
    def __init__(self, service, version):
        self.service = service
        self.version = version
        self.http = RequestStats(service, "seo_http", "seo_error_rate",
                                 "Share of 5xx responses among the application requests of the last 60 s.",
                                 "seo_http_errors_total")
        self._lock = threading.Lock()
        self.upstream = {}
        self.extra = []

    def upstream_result(self, upstream, outcome):
        with self._lock:
            key = (upstream, outcome)
            self.upstream[key] = self.upstream.get(key, 0) + 1

    def render(self):
        out = []
        self.http.render(out, "HTTP requests served, by route template and status code.",
                         "Time to serve HTTP requests, by route template.")
        out.append("# HELP seo_upstream_requests_total Outgoing calls to dependencies, by outcome.")
        out.append("# TYPE seo_upstream_requests_total counter")
        with self._lock:
            upstream = sorted(self.upstream.items())
        for (name, outcome), count in upstream:
            out.append("seo_upstream_requests_total%s %d" % (
                _labels((("service", self.service), ("upstream", name), ("outcome", outcome))), count))
        out.append("# HELP seo_process_resident_memory_bytes Resident memory of this process.")
        out.append("# TYPE seo_process_resident_memory_bytes gauge")
        out.append("seo_process_resident_memory_bytes%s %d" % (_labels((("service", self.service),)), rss_bytes()))
        out.append("# HELP seo_build_info Version of the running service program (SEO_VERSION).")
        out.append("# TYPE seo_build_info gauge")
        out.append("seo_build_info%s 1" % _labels((("service", self.service), ("version", self.version))))
        for render_extra in self.extra:
            render_extra(out)
        return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- faults

class InconsistentStateError(RuntimeError):
    pass


def _compute_rank_weight(stats):
    # The "logic error" of SEO_FAULT_ERROR_SHARE: a weight over an empty sample.
    return stats["clicks"] / stats["impressions"]


class Faults:
    def __init__(self, cfg):
        self.error_share = cfg.fault_error_share
        self.latency_s = cfg.fault_latency_ms / 1000.0
        self.exception_inputs = cfg.fault_exception_inputs
        self.leak_bytes = cfg.fault_leak_kb * 1024
        self.race = cfg.fault_race
        self.leaked = []
        self._held = None
        self._state_lock = threading.Lock()
        self._state = {"served": 0}

    def hold_startup_memory(self, megabytes):
        if megabytes > 0:
            self._held = bytearray(b"\xa5") * (megabytes * 1024 * 1024)

    def before_request(self):
        if self.latency_s:
            time.sleep(self.latency_s)
        if self.leak_bytes:
            self.leaked.append(bytearray(b"\x5a") * self.leak_bytes)
        self._update_shared_state()
        if self.error_share and random.random() < self.error_share:
            _compute_rank_weight({"clicks": 0, "impressions": 0})

    def _update_shared_state(self):
        if not self.race:
            with self._state_lock:
                self._state["served"] += 1
            return
        # Unsynchronised read-modify-write: concurrent requests interleave in the window.
        seen = self._state["served"]
        time.sleep(random.uniform(0.01, 0.05))
        current = self._state["served"]
        if current != seen:
            raise InconsistentStateError(
                "shared request state changed concurrently (read %d, found %d)" % (seen, current))
        self._state["served"] = seen + 1

    def check_keyword(self, keyword):
        if self.exception_inputs is not None and self.exception_inputs.search(keyword):
            _tokenize_keyword(keyword)


def _tokenize_keyword(keyword):
    # The tokenizer bug that SEO_FAULT_EXCEPTION_INPUTS switches on.
    tokens = [t for t in re.split(r"[\w]+", keyword) if t.strip()]
    raise ValueError("keyword tokenizer cannot handle %r (stray tokens %r)" % (keyword, tokens))


# --------------------------------------------------------------------------- HTTP plumbing

class HttpError(Exception):
    def __init__(self, status, message, headers=None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class Response:
    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status, body=b"", content_type="application/json", headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = headers or {}


def json_response(status, obj, headers=None):
    return Response(status, json.dumps(obj).encode("utf-8") + b"\n", "application/json", headers)


class Request:
    def __init__(self, handler, method):
        self.handler = handler
        self.method = method
        parts = urllib.parse.urlsplit(handler.path)
        self.path = parts.path or "/"
        self.raw_query = parts.query
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers
        self.client = handler.client_address[0] if handler.client_address else "-"
        self.request_id = (handler.headers.get("X-Request-Id") or "").strip()[:64] or os.urandom(8).hex()
        self.params = {}
        self._body = None

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def body(self):
        if self._body is None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise HttpError(400, "bad Content-Length") from None
            if length < 0 or length > MAX_BODY:
                raise HttpError(413, "request body too large (max %d bytes)" % MAX_BODY)
            try:
                self._body = self.handler.rfile.read(length) if length else b""
            except OSError as exc:
                raise ClientGone(str(exc)) from None
            if len(self._body) < length:
                raise ClientGone("client closed the connection before sending the whole body")
        return self._body

    def json(self):
        try:
            return json.loads(self.body().decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "request body is not valid JSON") from None


def http_request(method, base_url, path, timeout, headers=None, body=None):
    """One HTTP/1.1 call on a fresh connection: (status, headers dict, body bytes)."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request(method, parts.path.rstrip("/") + path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class UpstreamError(Exception):
    def __init__(self, upstream, outcome, reason, target):
        super().__init__("%s %s (%s)" % (upstream, reason, target))
        self.upstream = upstream
        self.outcome = outcome
        self.reason = reason
        self.target = target


def _route_regex(template):
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile("^" + pattern + "$")


def normalise_keyword(raw):
    keyword = " ".join(raw.strip().lower().split())
    if not keyword or len(keyword) > KEYWORD_MAX_LEN or any(ord(ch) < 32 or ord(ch) == 127 for ch in keyword):
        raise HttpError(400, "keyword must be 1-%d printable characters" % KEYWORD_MAX_LEN)
    return keyword


def quote_keyword(keyword):
    return urllib.parse.quote(keyword, safe="")


# --------------------------------------------------------------------------- service base

class Service:
    name = "service"

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.role
        self.metrics = Metrics(cfg.role, cfg.version)
        self.faults = Faults(cfg)
        self.stop_event = threading.Event()
        self.routes = []
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._threads = []
        self.metrics.extra.append(self._render_inflight)
        self.add_route("GET", "/health", self.handle_health, app=False)
        self.add_route("GET", "/livez", self.handle_livez, app=False)
        self.add_route("GET", "/metrics", self.handle_metrics, app=False)

    def add_route(self, method, template, handler, app=True):
        self.routes.append((method, template, _route_regex(template), handler, app))

    def match(self, method, path):
        allowed = None
        for route_method, template, regex, handler, app in self.routes:
            found = regex.match(path)
            if found:
                if route_method == method or (method == "HEAD" and route_method == "GET"):
                    params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
                    return template, handler, params, app
                allowed = template
        if allowed is not None:
            return allowed, self._method_not_allowed, {}, False
        return None

    @staticmethod
    def _method_not_allowed(req):
        raise HttpError(405, "method not allowed")

    # lifecycle
    def start(self):
        pass

    def spawn(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self):
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def inflight(self, delta):
        with self._inflight_lock:
            self._inflight += delta
            return self._inflight

    def _render_inflight(self, out):
        out.append("# HELP seo_http_requests_in_flight HTTP requests being served right now (this scrape included).")
        out.append("# TYPE seo_http_requests_in_flight gauge")
        out.append("seo_http_requests_in_flight%s %d" % (_labels((("service", self.name),)), self.inflight(0)))

    # standard endpoints
    def dependency_checks(self):
        """{name: callable returning None or raising} of the dependencies /health checks."""
        return {}

    def handle_health(self, req):
        checks, failing = {}, []
        for dep, check in self.dependency_checks().items():
            try:
                detail = check()
                checks[dep] = detail or "ok"
            except Exception as exc:  # report any failure as the dependency's state
                reason = exc.reason if isinstance(exc, UpstreamError) else \
                    (exc.message if isinstance(exc, HttpError) else describe_failure(exc)[1])
                checks[dep] = reason
                failing.append(dep)
        body = {"status": "ok" if not failing else "unhealthy", "service": self.name,
                "version": self.cfg.version, "checks": checks}
        body.update(self.health_extra())
        if failing:
            body["failing"] = failing
            LOG.warning("health check failed: " + "; ".join("%s: %s" % (d, checks[d]) for d in failing),
                        failing=failing)
            return json_response(503, body)
        return json_response(200, body)

    def health_extra(self):
        return {}

    def handle_livez(self, req):
        return json_response(200, {"status": "ok", "service": self.name, "pid": os.getpid()})

    def handle_metrics(self, req):
        return Response(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    # outgoing HTTP
    def call_upstream(self, upstream, base_url, method, path, timeout, headers=None, body=None):
        try:
            status, hdrs, data = http_request(method, base_url, path, timeout, headers, body)
        except Exception as exc:
            outcome, reason = describe_failure(exc)
            self.metrics.upstream_result(upstream, outcome)
            raise UpstreamError(upstream, outcome, reason, base_url) from exc
        outcome = "ok" if status < 400 else ("http_4xx" if status < 500 else "http_5xx")
        self.metrics.upstream_result(upstream, outcome)
        return status, hdrs, data

    def upstream_health(self, upstream, base_url, timeout):
        status, _headers, data = self.call_upstream(upstream, base_url, "GET", "/health", timeout)
        if status != 200:
            detail = ""
            try:
                info = json.loads(data.decode("utf-8"))
                bad = info.get("failing") or []
                detail = "; ".join("%s: %s" % (d, info.get("checks", {}).get(d)) for d in bad)
            except (ValueError, AttributeError):
                pass
            raise HttpError(503, "unhealthy (http %d%s)" % (status, (", " + detail) if detail else ""))
        return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "seo-service/" + VERSION
    # Idle keep-alive connections close after 3 s. A client that scrapes through a Service
    # every 5 s (Prometheus' reachability job) then connects anew each time and meets the
    # Service's current endpoints, not a pod it stuck to while the Service lost them.
    timeout = 3

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, fmt, *args):
        LOG.debug("http server: " + (fmt % args))

    def _dispatch(self, method):
        svc = self.server.service
        started = time.monotonic()
        svc.inflight(1)
        route, app, req = "unmatched", False, None
        try:
            req = Request(self, method)
            try:
                req.body()  # always consume the body: keeps keep-alive connections in sync
            except HttpError:
                self.close_connection = True
                raise
            except ClientGone as exc:
                self.close_connection = True
                LOG.debug("client went away while sending its request: %s" % exc, path=req.path)
                svc.inflight(-1)
                return
            found = svc.match(method, req.path)
            if found is None:
                resp = json_response(404, {"error": "not found", "path": req.path})
            else:
                route, handler, req.params, app = found
                if app:
                    svc.faults.before_request()
                resp = handler(req)
        except HttpError as exc:
            body = {"error": exc.message, "status": exc.status}
            body.update(exc.extra)
            if req is not None:
                body["request_id"] = req.request_id
            resp = json_response(exc.status, body, exc.headers)
        except Exception as exc:
            rid = req.request_id if req is not None else None
            if isinstance(exc, InconsistentStateError):
                LOG.error("inconsistent shared state: %s" % exc, route=route, request_id=rid)
            else:
                LOG.error("unhandled exception in request handler: %s: %s" % (type(exc).__name__, exc),
                          route=route, request_id=rid, exc_type=type(exc).__name__,
                          traceback=traceback.format_exc())
            resp = json_response(500, {"error": "internal server error", "status": 500, "request_id": rid})
        if req is not None and "X-Request-Id" not in resp.headers:
            resp.headers["X-Request-Id"] = req.request_id
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(resp.body)
        except OSError as exc:
            LOG.debug("client went away: %s" % exc)
        finally:
            elapsed = time.monotonic() - started
            svc.metrics.http.observe(route, resp.status, elapsed, resp.status >= 500, in_window=app)
            svc.inflight(-1)
        if app or resp.status >= 400:
            level = "ERROR" if resp.status >= 500 else ("WARNING" if resp.status >= 400 else "INFO")
            prefix = "request failed: " if resp.status >= 500 else ""
            LOG.log(level, "%s%s %s -> %d" % (prefix, method, self.path, resp.status), route=route,
                    status=resp.status,
                    duration_ms=round(elapsed * 1000, 1), client=self.client_address[0],
                    request_id=req.request_id if req is not None else None)


# --------------------------------------------------------------------------- rank-api

def stub_rank(keyword):
    digest = hashlib.sha256(keyword.encode("utf-8")).digest()
    return {"keyword": keyword, "rank": digest[0] % 100 + 1,
            "search_volume": int.from_bytes(digest[1:3], "big") % 50000 + 10,
            "engine": "stub-serp", "source": "rank-api"}


class RankApi(Service):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.add_route("GET", "/rank", self.handle_rank)

    def handle_rank(self, req):
        raw = req.arg("keyword")
        if raw is None:
            raise HttpError(400, "missing query parameter: keyword")
        self.faults.check_keyword(raw)
        return json_response(200, stub_rank(normalise_keyword(raw)))

    def handle_health(self, req):
        # The stub plays an external API: when it is slow it is slow for every caller,
        # health checks included. That is how the api_timeouts fault reaches backend-api.
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        return super().handle_health(req)


# --------------------------------------------------------------------------- backend-api

SCHEMA_SQL = """
SELECT pg_advisory_xact_lock(727001);
CREATE TABLE IF NOT EXISTS keywords (
    id serial PRIMARY KEY,
    keyword text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rank_history (
    id bigserial PRIMARY KEY,
    keyword text NOT NULL,
    rank integer NOT NULL,
    search_volume integer NOT NULL,
    source text NOT NULL DEFAULT 'rank-api',
    checked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rank_history_keyword_checked_idx ON rank_history (keyword, checked_at DESC);
INSERT INTO keywords (keyword)
    SELECT k FROM unnest(ARRAY[%s]::text[]) AS k
    WHERE NOT EXISTS (SELECT 1 FROM keywords)
    ON CONFLICT DO NOTHING;
"""
TS_SQL = "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


class BackendApi(Service):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.pg = Pool(lambda: PgConnection(cfg.db_host, cfg.db_port, cfg.db_user, cfg.db_password,
                                            cfg.db_name, connect_timeout=2.0, timeout=5.0,
                                            application_name="seo-backend-api"))
        self.redis = Pool(lambda: RedisConnection(cfg.redis_host, cfg.redis_port, 2.0, 3.0))
        self.schema_ready = False
        self._schema_lock = threading.Lock()
        self._inserts = 0
        self.add_route("GET", "/api/keywords", self.list_keywords)
        self.add_route("POST", "/api/keywords", self.add_keyword)
        self.add_route("GET", "/api/keywords/{keyword}/rank", self.keyword_rank)
        self.add_route("GET", "/api/report", self.report)

    # lifecycle
    def start(self):
        try:
            self.ensure_schema()
        except HttpError:
            self.spawn(self._schema_retry_loop, "schema-retry")

    def _schema_retry_loop(self):
        while not self.schema_ready and not self.stop_event.wait(3.0):
            try:
                self.ensure_schema()
            except HttpError:
                pass

    def stop(self):
        super().stop()
        self.pg.close_all()
        self.redis.close_all()

    def ensure_schema(self):
        if self.schema_ready:
            return
        with self._schema_lock:
            if self.schema_ready:
                return
            seeds = ",".join(sql_literal(k) for k in SEED_KEYWORDS)
            self.db(lambda c: c.query_all(SCHEMA_SQL % seeds))
            self.schema_ready = True
            LOG.info("database schema ready (tables keywords, rank_history)", dependency="postgres")

    # dependency access with uniform error handling
    def db(self, fn):
        cfg = self.cfg
        try:
            result = self.pg.run(fn)
        except PgError as exc:
            if exc.unavailable or exc.fatal:
                self.metrics.upstream_result("postgres", "error")
                LOG.error("postgres: %s" % exc, dependency="postgres", sqlstate=exc.code,
                          target="%s:%d/%s" % (cfg.db_host, cfg.db_port, cfg.db_name))
                raise HttpError(503, "postgres unavailable: %s" % exc, dependency="postgres") from None
            self.metrics.upstream_result("postgres", "error")
            LOG.error("postgres query failed: %s" % exc, dependency="postgres", sqlstate=exc.code)
            raise HttpError(500, "database error: %s" % exc, dependency="postgres") from None
        except (OSError, ProtocolError) as exc:
            outcome, reason = describe_failure(exc)
            self.metrics.upstream_result("postgres", outcome)
            LOG.error("postgres: %s (%s:%d)" % (reason, cfg.db_host, cfg.db_port), dependency="postgres",
                      outcome=outcome)
            raise HttpError(503, "postgres unavailable: %s" % reason, dependency="postgres") from None
        self.metrics.upstream_result("postgres", "ok")
        return result

    def sql(self, text):
        self.ensure_schema()
        return self.db(lambda c: c.query(text))

    def cache(self, *args):
        cfg = self.cfg
        try:
            result = self.redis.run(lambda c: c.command(*args))
        except RedisError as exc:
            self.metrics.upstream_result("redis", "error")
            LOG.error("redis: %s" % exc, dependency="redis", command=str(args[0]))
            raise HttpError(503, "redis error: %s" % exc, dependency="redis") from None
        except (OSError, ProtocolError) as exc:
            outcome, reason = describe_failure(exc)
            self.metrics.upstream_result("redis", outcome)
            LOG.error("redis: %s (%s:%d)" % (reason, cfg.redis_host, cfg.redis_port), dependency="redis",
                      outcome=outcome)
            raise HttpError(503, "redis unavailable: %s" % reason, dependency="redis") from None
        self.metrics.upstream_result("redis", "ok")
        return result

    def dependency_checks(self):
        def postgres():
            rows = self.db(lambda c: c.query("SELECT 1")).rows
            if rows != [("1",)]:
                raise HttpError(503, "unexpected SELECT 1 result %r" % rows)

        def redis():
            if self.cache("PING") != "PONG":
                raise HttpError(503, "unexpected PING reply")

        def rank_api():
            # Readiness follows the external API too: a slow rank API takes backend-api
            # out of its Service (the cascading failure the outage drill teaches).
            return self.upstream_health("rank-api", self.cfg.rank_api_url, self.cfg.rank_api_timeout)

        return {"postgres": postgres, "redis": redis, "rank-api": rank_api}

    def health_extra(self):
        return {"schema_ready": self.schema_ready}

    # API
    def authorize(self, req):
        given = req.headers.get("X-Api-Key")
        if not given:
            LOG.warning("request without api key", client=req.client, request_id=req.request_id)
            raise HttpError(401, "missing api key (X-Api-Key)")
        if not hmac.compare_digest(given.encode("utf-8"), self.cfg.api_key.encode("utf-8")):
            LOG.warning("invalid api key", client=req.client, request_id=req.request_id)
            raise HttpError(401, "invalid api key")

    def list_keywords(self, req):
        self.authorize(req)
        result = self.sql(
            "SELECT k.keyword, h.rank, h.search_volume, " + TS_SQL % "h.checked_at" + " "
            "FROM keywords k LEFT JOIN LATERAL (SELECT rank, search_volume, checked_at FROM rank_history r "
            "WHERE r.keyword = k.keyword ORDER BY checked_at DESC LIMIT 1) h ON true "
            "ORDER BY k.keyword LIMIT 500")
        items = [{"keyword": kw, "rank": int(rank) if rank is not None else None,
                  "search_volume": int(vol) if vol is not None else None, "checked_at": ts}
                 for kw, rank, vol, ts in result.rows]
        return json_response(200, {"keywords": items, "count": len(items)})

    def add_keyword(self, req):
        self.authorize(req)
        data = req.json()
        if not isinstance(data, dict) or not isinstance(data.get("keyword"), str):
            raise HttpError(400, 'body must be a JSON object {"keyword": "..."}')
        self.faults.check_keyword(data["keyword"])
        keyword = normalise_keyword(data["keyword"])
        result = self.sql("INSERT INTO keywords (keyword) VALUES (%s) ON CONFLICT (keyword) DO NOTHING "
                          "RETURNING id" % sql_literal(keyword))
        created = bool(result.rows)
        LOG.info("keyword %s" % ("added" if created else "already tracked"), keyword=keyword,
                 request_id=req.request_id)
        return json_response(201 if created else 200, {"keyword": keyword, "created": created})

    def keyword_rank(self, req):
        self.authorize(req)
        raw = req.params["keyword"]
        self.faults.check_keyword(raw)
        keyword = normalise_keyword(raw)
        refresh = req.arg("refresh", "0") in ("1", "true", "yes")
        key = "rank:" + keyword
        self.cache("INCR", "stats:lookups")
        if not refresh:
            cached = self.cache("GET", key)
            if cached is not None:
                try:
                    data = json.loads(cached.decode("utf-8"))
                    if isinstance(data, dict) and isinstance(data.get("rank"), int):
                        data["cached"] = True
                        return json_response(200, data, {"X-Cache": "HIT"})
                except (UnicodeDecodeError, ValueError):
                    pass
                LOG.warning("ignoring unreadable backend cache entry", key=key)
        fresh = self.fetch_rank(keyword, req.request_id)
        row = self.sql(
            "INSERT INTO keywords (keyword) VALUES ({kw}) ON CONFLICT (keyword) DO NOTHING; "
            "INSERT INTO rank_history (keyword, rank, search_volume) VALUES ({kw}, {rank}, {vol}) "
            "RETURNING id, {ts}".format(kw=sql_literal(keyword), rank=int(fresh["rank"]),
                                        vol=int(fresh["search_volume"]), ts=TS_SQL % "checked_at")).rows[0]
        data = {"keyword": keyword, "rank": fresh["rank"], "search_volume": fresh["search_volume"],
                "checked_at": row[1], "history_id": int(row[0]), "cached": False}
        self.cache("SETEX", key, BACKEND_CACHE_TTL_S, json.dumps(data))
        self.cache("INCR", "stats:rank_api_calls")
        self._maybe_prune()
        return json_response(200, data, {"X-Cache": "MISS"})

    def _maybe_prune(self):
        self._inserts += 1
        if self._inserts % 500 == 0:
            result = self.sql("DELETE FROM rank_history WHERE checked_at < now() - interval '1 day'")
            LOG.info("pruned rank history", result=result.tag)

    def fetch_rank(self, keyword, request_id):
        cfg = self.cfg
        path = "/rank?keyword=" + quote_keyword(keyword)
        try:
            status, _headers, body = self.call_upstream("rank-api", cfg.rank_api_url, "GET", path, cfg.rank_api_timeout,
                                                        {"X-Request-Id": request_id, "Accept": "application/json"})
        except UpstreamError as exc:
            if exc.outcome == "timeout":
                LOG.error("rank api timeout after %gs" % cfg.rank_api_timeout, dependency="rank-api",
                          keyword=keyword, target=cfg.rank_api_url, request_id=request_id)
                raise HttpError(504, "rank api timeout after %gs" % cfg.rank_api_timeout,
                                dependency="rank-api") from None
            LOG.error("rank api unavailable: %s (%s)" % (exc.reason, cfg.rank_api_url), dependency="rank-api",
                      outcome=exc.outcome, request_id=request_id)
            raise HttpError(503, "rank api unavailable: %s" % exc.reason, dependency="rank-api") from None
        if status != 200:
            LOG.error("rank api answered http %d" % status, dependency="rank-api", keyword=keyword,
                      request_id=request_id)
            raise HttpError(503, "rank api error: http %d" % status, dependency="rank-api")
        try:
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data.get("rank"), int) or not isinstance(data.get("search_volume"), int):
                raise ValueError("rank/search_volume missing")
        except (ValueError, AttributeError, UnicodeDecodeError) as exc:
            LOG.error("rank api returned an invalid payload: %s" % exc, dependency="rank-api")
            raise HttpError(503, "rank api returned an invalid payload", dependency="rank-api") from None
        return data

    def report(self, req):
        self.authorize(req)
        self.ensure_schema()
        results = self.db(lambda c: c.query_all(
            "SELECT (SELECT count(*) FROM keywords), "
            "(SELECT count(*) FROM rank_history WHERE checked_at > now() - interval '1 hour'), "
            "(SELECT round(avg(rank)::numeric, 2) FROM rank_history WHERE checked_at > now() - interval '1 hour'); "
            "SELECT keyword, rank FROM (SELECT DISTINCT ON (keyword) keyword, rank FROM rank_history "
            "ORDER BY keyword, checked_at DESC) latest ORDER BY rank, keyword LIMIT 5"))
        keywords, checks, avg = results[0].rows[0]
        lookups = self.cache("GET", "stats:lookups")
        calls = self.cache("GET", "stats:rank_api_calls")
        return json_response(200, {
            "keywords_tracked": int(keywords), "rank_checks_last_hour": int(checks),
            "average_rank_last_hour": float(avg) if avg is not None else None,
            "top_keywords": [{"keyword": kw, "rank": int(rank)} for kw, rank in results[1].rows],
            "lookups_total": int(lookups) if lookups is not None else 0,
            "rank_api_calls_total": int(calls) if calls is not None else 0,
        })


# --------------------------------------------------------------------------- api-gateway

class CorruptCacheEntry(Exception):
    pass


class TokenBucket:
    def __init__(self, rate):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class ApiGateway(Service):
    ROUTES = (
        ("rank", "GET", "/api/keywords/{keyword}/rank"),
        ("keywords", "GET", "/api/keywords"),
        ("keywords", "POST", "/api/keywords"),
        ("report", "GET", "/api/report"),
    )

    def __init__(self, cfg):
        super().__init__(cfg)
        self._rr = 0
        self._rr_lock = threading.Lock()
        self.bucket = TokenBucket(cfg.rate_limit_rps) if cfg.rate_limit_rps > 0 else None
        self.journal = os.path.join(cfg.data_dir, JOURNAL_NAME)
        self._journal_lock = threading.Lock()
        self.redis = None
        if cfg.redis_host:
            self.redis = Pool(lambda: RedisConnection(cfg.redis_host, cfg.redis_port, 1.0, 2.0))
        for name, method, template in self.ROUTES:
            self.add_route(method, template, self._proxy_handler(name))

    def start(self):
        try:
            os.makedirs(self.cfg.data_dir, exist_ok=True)
        except OSError as exc:
            LOG.warning("cannot create data dir %s: %s" % (self.cfg.data_dir, exc))

    def stop(self):
        super().stop()
        if self.redis is not None:
            self.redis.close_all()

    def _proxy_handler(self, route_name):
        return lambda req: self.proxy(req, route_name)

    def next_backend(self):
        with self._rr_lock:
            url = self.cfg.backend_urls[self._rr % len(self.cfg.backend_urls)]
            self._rr += 1
        return url

    def dependency_checks(self):
        def backend():
            errors = []
            timeout = min(2.0, self.cfg.upstream_timeout)
            for url in self.cfg.backend_urls:
                try:
                    return self.upstream_health("backend-api", url, timeout)
                except UpstreamError as exc:
                    errors.append("%s: %s" % (url, exc.reason))
                except HttpError as exc:
                    errors.append("%s: %s" % (url, exc.message))
            raise HttpError(503, "; ".join(errors))

        return {"backend-api": backend}

    def health_extra(self):
        extra = {"routes": sorted(self.cfg.routes)}
        if self.redis is not None:
            try:
                self.redis.run(lambda c: c.command("PING"))
                extra["cache"] = "ok"
            except Exception as exc:  # the cache is optional: reported, never failing
                extra["cache"] = describe_failure(exc)[1]
        return extra

    # journal
    def write_journal(self, req, route_name):
        line = json.dumps({"ts": _now_iso(), "request_id": req.request_id, "method": req.method,
                           "path": req.path, "route": route_name, "client": req.client}) + "\n"
        with self._journal_lock:
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                data = line.encode("utf-8")
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(28, "short write to request journal (%d of %d bytes)" % (written, len(data)))
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > JOURNAL_MAX_BYTES and os.path.isfile(self.journal):
                os.replace(self.journal, self.journal + ".1")

    # cache
    def cache_key(self, keyword):
        return "gw:rank:" + keyword

    def cache_get(self, key):
        try:
            raw = self.redis.run(lambda c: c.command("GET", key))
        except Exception as exc:
            outcome, reason = describe_failure(exc)
            self.metrics.upstream_result("redis", outcome)
            LOG.warning("response cache unavailable: %s" % reason, dependency="redis")
            return None
        self.metrics.upstream_result("redis", "ok")
        if raw is None:
            return None
        try:
            entry = json.loads(raw.decode("utf-8"))
            if not isinstance(entry, dict) or entry.get("v") != 1 or not isinstance(entry.get("body"), dict):
                raise ValueError("unexpected entry layout")
            if not isinstance(entry["body"].get("rank"), int):
                raise ValueError("entry without an integer rank")
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptCacheEntry("%s: %s" % (key, exc)) from None
        return entry["body"]

    def cache_put(self, key, body):
        if self.cfg.fault_cache_poison:
            # The bad version: python repr instead of JSON, and no expiry.
            args = ("SET", key, repr({"v": 1, "body": body}))
        else:
            args = ("SETEX", key, GATEWAY_CACHE_TTL_S, json.dumps({"v": 1, "body": body}))
        try:
            self.redis.run(lambda c: c.command(*args))
            self.metrics.upstream_result("redis", "ok")
        except Exception as exc:
            outcome, reason = describe_failure(exc)
            self.metrics.upstream_result("redis", outcome)
            LOG.warning("response cache write failed: %s" % reason, dependency="redis")

    # proxy
    def proxy(self, req, route_name):
        cfg = self.cfg
        if self.bucket is not None and not self.bucket.take():
            LOG.error("rate limit exceeded (%g rps), answering %d" % (cfg.rate_limit_rps, cfg.rate_limit_status),
                      route=route_name, client=req.client, request_id=req.request_id)
            raise HttpError(cfg.rate_limit_status, "rate limit exceeded", {"Retry-After": "1"})
        if route_name not in cfg.routes:
            LOG.error("route not configured: %s (SEO_ROUTES=%s)" % (route_name, ",".join(sorted(cfg.routes))),
                      route=route_name, request_id=req.request_id)
            raise HttpError(500, "route not configured", route=route_name)
        try:
            self.write_journal(req, route_name)
        except OSError as exc:
            LOG.error("request journal write failed: %s" % exc, path=self.journal, request_id=req.request_id)
            raise HttpError(507, "insufficient storage: cannot write the request journal") from None
        path = req.path
        cache_key = None
        if route_name == "rank":
            self.faults.check_keyword(req.params["keyword"])
            keyword = normalise_keyword(req.params["keyword"])
            path = "/api/keywords/%s/rank" % quote_keyword(keyword)
            if self.redis is not None and req.method == "GET" and req.arg("refresh") is None:
                cache_key = self.cache_key(keyword)
                try:
                    hit = self.cache_get(cache_key)
                except CorruptCacheEntry as exc:
                    LOG.error("corrupt cache entry %s" % exc, dependency="redis", request_id=req.request_id)
                    raise HttpError(500, "corrupt cache entry", key=cache_key) from None
                if hit is not None:
                    return json_response(200, hit, {"X-Cache": "HIT"})
        if req.raw_query:
            path += "?" + req.raw_query
        backend = self.next_backend()
        headers = {"X-Api-Key": cfg.backend_api_key, "X-Request-Id": req.request_id,
                   "X-Forwarded-For": req.client, "Accept": "application/json"}
        body = None
        if req.method == "POST":
            body = req.body()
            headers["Content-Type"] = req.headers.get("Content-Type", "application/json")
        try:
            status, hdrs, data = self.call_upstream("backend-api", backend, req.method, path, cfg.upstream_timeout,
                                                    headers, body)
        except UpstreamError as exc:
            if exc.outcome == "timeout":
                LOG.error("upstream timeout after %gs: %s %s via %s" % (cfg.upstream_timeout, req.method, path,
                                                                        backend),
                          upstream="backend-api", request_id=req.request_id)
                raise HttpError(504, "gateway timeout: backend-api did not answer in %gs" % cfg.upstream_timeout,
                                {"X-Upstream": backend}) from None
            LOG.error("upstream %s: %s %s via %s" % (
                "connection refused" if exc.outcome == "refused" else "unreachable: " + exc.reason,
                req.method, path, backend), upstream="backend-api", request_id=req.request_id)
            raise HttpError(502, "bad gateway: backend-api %s" % exc.reason, {"X-Upstream": backend}) from None
        if status == 401:
            LOG.error("upstream rejected api key (backend-api answered 401 via %s)" % backend,
                      upstream="backend-api", request_id=req.request_id)
            raise HttpError(502, "bad gateway: upstream rejected api key", {"X-Upstream": backend})
        if status >= 500:
            LOG.error("upstream error: backend-api answered %d for %s %s" % (status, req.method, path),
                      upstream="backend-api", request_id=req.request_id, upstream_body=data[:300].decode(
                          "utf-8", "replace"))
        resp = Response(status, data, hdrs.get("content-type", "application/json"), {"X-Upstream": backend})
        if cache_key is not None:
            resp.headers["X-Cache"] = "MISS"
            if status == 200:
                try:
                    parsed = json.loads(data.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    parsed = None
                if isinstance(parsed, dict) and isinstance(parsed.get("rank"), int):
                    self.cache_put(cache_key, parsed)
        return resp


# --------------------------------------------------------------------------- frontend

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SEO Tool</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .8em}}.err{{color:#a00}}</style></head>
<body><h1>SEO Tool &mdash; keyword ranks</h1>
{content}
<p><small>{service} {version} &middot; {now}</small></p></body></html>
"""


class Frontend(Service):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.add_route("GET", "/", self.index)

    def dependency_checks(self):
        return {"api-gateway": lambda: self.upstream_health("api-gateway", self.cfg.gateway_url,
                                                            min(2.0, self.cfg.upstream_timeout))}

    def _page(self, status, content):
        text = PAGE.format(content=content, service=html.escape(self.name), version=html.escape(self.cfg.version),
                           now=_now_iso())
        return Response(status, text, "text/html; charset=utf-8")

    def _fetch(self, path, req):
        try:
            status, _headers, data = self.call_upstream("api-gateway", self.cfg.gateway_url, "GET", path,
                                                        self.cfg.upstream_timeout, {"X-Request-Id": req.request_id})
        except UpstreamError as exc:
            LOG.error("api-gateway %s for %s" % (exc.reason, path), upstream="api-gateway",
                      request_id=req.request_id)
            return 504 if exc.outcome == "timeout" else 502, "api-gateway " + exc.reason
        if status != 200:
            LOG.error("api-gateway answered %d for %s" % (status, path), upstream="api-gateway",
                      request_id=req.request_id)
            return 502, "api-gateway answered HTTP %d for %s" % (status, path)
        try:
            return 200, json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            LOG.error("api-gateway returned invalid JSON for %s" % path, request_id=req.request_id)
            return 502, "api-gateway returned invalid JSON"

    def index(self, req):
        status, keywords = self._fetch("/api/keywords", req)
        if status != 200:
            return self._page(status, '<p class="err">The SEO service is temporarily unavailable: %s</p>'
                              % html.escape(keywords))
        status, report = self._fetch("/api/report", req)
        if status != 200:
            return self._page(status, '<p class="err">The report is temporarily unavailable: %s</p>'
                              % html.escape(report))
        rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            html.escape(str(item.get("keyword"))), html.escape(str(item.get("rank") or "-")),
            html.escape(str(item.get("checked_at") or "-"))) for item in keywords.get("keywords", []))
        content = ("<p>%d keywords tracked, %d rank checks in the last hour, average rank %s.</p>"
                   "<table><tr><th>keyword</th><th>rank</th><th>checked</th></tr>%s</table>") % (
            report.get("keywords_tracked", 0), report.get("rank_checks_last_hour", 0),
            html.escape(str(report.get("average_rank_last_hour") or "-")), rows)
        return self._page(200, content)


# --------------------------------------------------------------------------- worker

class Worker(Service):
    BATCH = 10

    def __init__(self, cfg):
        super().__init__(cfg)
        self._rr = 0
        self._cursor = 0
        self._lock = threading.Lock()
        self.refresh = {}
        self.cycles = {}
        self.last_success = 0.0
        self.metrics.extra.append(self._render)

    def _backend(self):
        url = self.cfg.backend_urls[self._rr % len(self.cfg.backend_urls)]
        self._rr += 1
        return url

    def dependency_checks(self):
        def backend():
            errors = []
            for url in self.cfg.backend_urls:
                try:
                    return self.upstream_health("backend-api", url, min(2.0, self.cfg.upstream_timeout))
                except (UpstreamError, HttpError) as exc:
                    errors.append("%s: %s" % (url, getattr(exc, "reason", None) or exc.message))
            raise HttpError(503, "; ".join(errors))

        return {"backend-api": backend}

    def start(self):
        self.spawn(self._loop, "refresh-loop")

    def _loop(self):
        while not self.stop_event.wait(self.cfg.worker_interval):
            try:
                self.cycle()
            except Exception as exc:  # keep the loop alive whatever happens
                LOG.error("refresh cycle crashed: %s: %s" % (type(exc).__name__, exc),
                          traceback=traceback.format_exc())

    def _count(self, table, key):
        with self._lock:
            table[key] = table.get(key, 0) + 1

    def _get(self, path):
        headers = {"X-Api-Key": self.cfg.backend_api_key, "X-Request-Id": "worker-" + os.urandom(6).hex()}
        backend = self._backend()
        status, _headers, data = self.call_upstream("backend-api", backend, "GET", path, self.cfg.upstream_timeout,
                                                    headers)
        if status != 200:
            raise HttpError(status, "backend-api answered HTTP %d for %s via %s: %s" % (
                status, path.split("?")[0], backend, data[:200].decode("utf-8", "replace").strip()))
        return json.loads(data.decode("utf-8"))

    def cycle(self):
        try:
            listing = self._get("/api/keywords")
        except (UpstreamError, HttpError, ValueError) as exc:
            self._count(self.cycles, "failed")
            LOG.error("refresh cycle failed: cannot list keywords: %s" % exc)
            return
        keywords = [item["keyword"] for item in listing.get("keywords", []) if item.get("keyword")]
        if not keywords:
            self._count(self.cycles, "ok")
            LOG.info("refresh cycle: no keywords tracked")
            return
        batch = [keywords[(self._cursor + i) % len(keywords)] for i in range(min(self.BATCH, len(keywords)))]
        self._cursor = (self._cursor + len(batch)) % len(keywords)
        ok, failures = 0, []
        for keyword in batch:
            if self.stop_event.is_set():
                break
            try:
                self._get("/api/keywords/%s/rank?refresh=1" % quote_keyword(keyword))
                ok += 1
                self._count(self.refresh, "ok")
            except (UpstreamError, HttpError, ValueError) as exc:
                failures.append("%s: %s" % (keyword, exc))
                self._count(self.refresh, "failed")
        if failures:
            self._count(self.cycles, "failed")
            LOG.error("refresh cycle: %d refreshed, %d failed; first failure: %s"
                      % (ok, len(failures), failures[0]))
        else:
            self._count(self.cycles, "ok")
            self.last_success = time.time()
            LOG.info("refresh cycle: %d keywords refreshed" % ok)

    def _render(self, out):
        svc = self.name
        with self._lock:
            refresh = sorted(self.refresh.items())
            cycles = sorted(self.cycles.items())
        out.append("# HELP seo_worker_refresh_total Keyword rank refreshes, by outcome.")
        out.append("# TYPE seo_worker_refresh_total counter")
        for outcome, count in refresh:
            out.append("seo_worker_refresh_total%s %d" % (_labels((("service", svc), ("outcome", outcome))), count))
        out.append("# HELP seo_worker_cycles_total Refresh cycles, by outcome.")
        out.append("# TYPE seo_worker_cycles_total counter")
        for outcome, count in cycles:
            out.append("seo_worker_cycles_total%s %d" % (_labels((("service", svc), ("outcome", outcome))), count))
        out.append("# HELP seo_worker_last_success_timestamp_seconds End of the last fully successful cycle.")
        out.append("# TYPE seo_worker_last_success_timestamp_seconds gauge")
        out.append("seo_worker_last_success_timestamp_seconds%s %s" % (_labels((("service", svc),)),
                                                                       _num(self.last_success)))


# --------------------------------------------------------------------------- traffic

class Traffic(Service):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.client = RequestStats(cfg.role, "seo_client", "seo_client_error_rate",
                                   "Share of failed client requests (5xx or transport error) in the last 60 s.")
        self.tickets = queue.Queue(maxsize=max(8, cfg.traffic_concurrency * 2))
        self._lock = threading.Lock()
        self.skipped = 0
        self.sent = 0
        self.failed = 0
        self._warned = 0
        self._warn_window = 0
        self.metrics.extra.append(self._render)

    def start(self):
        self.spawn(self._pacer, "pacer")
        for i in range(self.cfg.traffic_concurrency):
            self.spawn(self._client_loop, "client-%d" % i)
        self.spawn(self._summary_loop, "summary")
        LOG.info("sending traffic to %s at %g rps with %d clients" % (
            self.cfg.gateway_url, self.cfg.traffic_rps, self.cfg.traffic_concurrency))

    def health_extra(self):
        with self._lock:
            return {"sent": self.sent, "failed": self.failed, "skipped": self.skipped,
                    "client_error_rate": round(self.client.error_rate(), 4)}

    def _pacer(self):
        # Poisson arrivals (exponential gaps) at SEO_TRAFFIC_RPS on average, like real users:
        # evenly spaced requests would never overlap and hide concurrency bugs.
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now < next_at:
                self.stop_event.wait(next_at - now)
                continue
            next_at += random.expovariate(self.cfg.traffic_rps)
            if next_at < now - 1.0:
                next_at = now
            try:
                self.tickets.put_nowait(1)
            except queue.Full:
                with self._lock:
                    self.skipped += 1

    def _client_loop(self):
        while not self.stop_event.is_set():
            try:
                self.tickets.get(timeout=0.2)
            except queue.Empty:
                continue
            self.one_request()

    def pick(self):
        keyword = random.choice(self.cfg.traffic_keywords)
        roll = random.random()
        if roll < 0.70:
            return "GET", "/api/keywords/%s/rank" % quote_keyword(keyword), "/api/keywords/{keyword}/rank", None
        if roll < 0.85:
            return "GET", "/api/keywords", "/api/keywords", None
        if roll < 0.95:
            return "GET", "/api/report", "/api/report", None
        return "POST", "/api/keywords", "/api/keywords", json.dumps({"keyword": keyword}).encode("utf-8")

    def one_request(self):
        method, path, route, body = self.pick()
        headers = {"X-Request-Id": "traffic-" + os.urandom(6).hex(), "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            status, _headers, _data = self.call_upstream("api-gateway", self.cfg.gateway_url, method, path,
                                                         self.cfg.upstream_timeout, headers, body)
            code, failed, detail = str(status), status >= 500, "HTTP %d" % status
        except UpstreamError as exc:
            code, failed, detail = exc.outcome, True, exc.reason
        elapsed = time.monotonic() - started
        self.client.observe(route, code, elapsed, failed)
        with self._lock:
            self.sent += 1
            if failed:
                self.failed += 1
            now = int(time.monotonic() // 10)
            if now != self._warn_window:
                self._warn_window, self._warned = now, 0
            warn = failed and self._warned < 5
            if warn:
                self._warned += 1
        if warn:
            LOG.warning("request failed: %s %s -> %s" % (method, path, detail), route=route, code=code,
                        duration_ms=round(elapsed * 1000, 1))

    def _summary_loop(self):
        while not self.stop_event.wait(30.0):
            with self._lock:
                sent, failed, skipped = self.sent, self.failed, self.skipped
            LOG.info("traffic summary: sent=%d failed=%d skipped=%d error_rate_60s=%.3f" % (
                sent, failed, skipped, self.client.error_rate()))

    def _render(self, out):
        self.client.render(out, "Requests sent by the load generator, by route template and status code "
                                "(or timeout/refused/error).",
                           "Client-side latency of the load generator's requests, by route template.")
        out.append("# HELP seo_traffic_skipped_total Scheduled requests dropped because every client was busy.")
        out.append("# TYPE seo_traffic_skipped_total counter")
        with self._lock:
            skipped = self.skipped
        out.append("seo_traffic_skipped_total%s %d" % (_labels((("service", self.name),)), skipped))


# --------------------------------------------------------------------------- main

ROLE_CLASSES = {
    "backend-api": BackendApi,
    "api-gateway": ApiGateway,
    "frontend": Frontend,
    "worker": Worker,
    "rank-api": RankApi,
    "traffic": Traffic,
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # socketserver prints these to stderr; keep every log line JSON on stdout instead.
        exc = sys.exc_info()[1]
        level = "DEBUG" if isinstance(exc, (ConnectionError, TimeoutError)) else "WARNING"
        LOG.log(level, "error while handling a connection: %s: %s" % (type(exc).__name__, exc),
                client=client_address[0] if client_address else None)


def main(argv=None, environ=None):
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    try:
        cfg = load_config(environ, argv)
    except ConfigError as exc:
        role = (environ.get("SEO_ROLE") or "").strip()
        LOG.service = role if role in ROLES else "seo-service"
        LOG.error(exc.message(), variable=exc.var, value=exc.shown_value(), allowed=exc.allowed)
        return 2
    LOG.service = cfg.role
    LOG.threshold = LEVELS[cfg.log_level]
    unknown = sorted(k for k in environ if k.startswith("SEO_") and k not in KNOWN_VARS)
    if unknown:
        LOG.warning("ignoring unknown settings: " + ", ".join(unknown))

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    service = ROLE_CLASSES[cfg.role](cfg)
    if cfg.fault_startup_memory_mb:
        service.faults.hold_startup_memory(cfg.fault_startup_memory_mb)
        LOG.debug("holding %d MiB allocated at startup" % cfg.fault_startup_memory_mb)
    try:
        server = Server((cfg.listen_host, cfg.port), Handler)
    except OSError as exc:
        LOG.error("cannot listen on %s:%d: %s" % (cfg.listen_host, cfg.port, exc))
        return 1
    server.service = service
    service.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http",
                              daemon=True)
    thread.start()
    LOG.info("%s %s listening on %s:%d" % (cfg.role, cfg.version, cfg.listen_host, cfg.port),
             role=cfg.role, version=cfg.version, port=cfg.port, pid=os.getpid())
    while not stop.wait(0.5):
        pass
    # Ignore repeated signals from here on: CPython resets Python-level handlers to the
    # default at finalization, so a second SIGTERM would otherwise kill the drain.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    LOG.info("shutdown signal received, draining requests")
    server.shutdown()
    server.server_close()
    service.stop()
    deadline = time.monotonic() + 20
    while service.inflight(0) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    LOG.info("stopped", inflight=service.inflight(0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
