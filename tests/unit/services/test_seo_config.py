"""Strict startup configuration: a bad or missing setting exits 2 after exactly one JSON
log line `config error: SEO_X=<value>: <what is allowed>`."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import PYTHON, SERVICE, run_config

ROLES = ["backend-api", "api-gateway", "frontend", "worker", "rank-api", "traffic"]
VALID = {
    "backend-api": {"SEO_DB_HOST": "postgres", "SEO_DB_NAME": "seo", "SEO_DB_USER": "seo",
                    "SEO_DB_PASSWORD": "hunter2-db", "SEO_REDIS_HOST": "redis",
                    "SEO_RANK_API_URL": "http://rank-api", "SEO_API_KEY": "hunter2-key"},
    "api-gateway": {"SEO_BACKEND_URLS": "http://backend-api", "SEO_BACKEND_API_KEY": "hunter2-key",
                    "SEO_DATA_DIR": "/data"},
    "frontend": {"SEO_GATEWAY_URL": "http://api-gateway"},
    "worker": {"SEO_BACKEND_URLS": "http://backend-api", "SEO_BACKEND_API_KEY": "hunter2-key"},
    "rank-api": {},
    "traffic": {"SEO_GATEWAY_URL": "http://api-gateway"},
}
SECRETS = ("hunter2-db", "hunter2-key")


def check_one_error(rc, lines, stderr, var, shown=None, allowed_part=None):
    assert rc == 2, (rc, lines, stderr)
    assert stderr == "", stderr
    assert len(lines) == 1, lines
    rec = json.loads(lines[0])
    assert rec["level"] == "ERROR"
    assert set(rec) >= {"ts", "level", "service", "msg"}
    assert rec["msg"].startswith("config error: %s=" % var), rec["msg"]
    if shown is not None:
        assert rec["msg"].startswith("config error: %s=%s: " % (var, shown)), rec["msg"]
    allowed = rec["msg"].split(": ", 2)[2]
    assert allowed.strip(), rec["msg"]
    if allowed_part is not None:
        assert allowed_part in allowed, rec["msg"]
    for secret in SECRETS:
        assert secret not in lines[0]
    return rec


def role_env(role, overrides):
    env = {"SEO_ROLE": role, **VALID[role]}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_role(role, overrides, args=()):
    """As a real process: exit code, stdout and stderr."""
    return run_config(role_env(role, overrides), args)


@pytest.fixture
def in_process(seo, capsys):
    """main() of the imported program: same validation, without a process start per case."""
    def run(role, overrides, args=()):
        rc = seo.main(list(args), role_env(role, overrides))
        out, err = capsys.readouterr()
        return rc, out.splitlines(), err
    return run


def test_missing_role_lists_roles():
    rc, lines, err = run_config({})
    rec = check_one_error(rc, lines, err, "SEO_ROLE", "<unset>")
    for role in ROLES:
        assert role in rec["msg"]


def test_unknown_role_lists_allowed_roles():
    rc, lines, err = run_config({"SEO_ROLE": "database"})
    rec = check_one_error(rc, lines, err, "SEO_ROLE", "'database'")
    for role in ROLES:
        assert role in rec["msg"]
    assert rec["variable"] == "SEO_ROLE" and rec["value"] == "'database'"


def test_unknown_role_argument():
    rc, lines, err = run_config({}, ["--role", "db"])
    check_one_error(rc, lines, err, "--role", "'db'", "rank-api")


def test_unknown_argument():
    rc, lines, err = run_config({"SEO_ROLE": "rank-api"}, ["--verbose"])
    check_one_error(rc, lines, err, "argv", "'--verbose'", "--role")


REQUIRED = [(role, var) for role, env in VALID.items() for var in env]


@pytest.mark.parametrize("role,var", REQUIRED, ids=["%s-%s" % rv for rv in REQUIRED])
def test_each_required_setting(in_process, role, var):
    rc, lines, err = in_process(role, {var: None})
    check_one_error(rc, lines, err, var, "<unset>", "required")


@pytest.mark.parametrize("role,var", [("backend-api", "SEO_DB_NAME"), ("frontend", "SEO_GATEWAY_URL")])
def test_empty_required_setting_counts_as_missing(in_process, role, var):
    rc, lines, err = in_process(role, {var: "  "})
    check_one_error(rc, lines, err, var, "<unset>")


BAD_VALUES = [
    ("rank-api", "SEO_PORT", "abc", "between 1 and 65535"),
    ("rank-api", "SEO_PORT", "0", "between 1 and 65535"),
    ("rank-api", "SEO_PORT", "70000", "between 1 and 65535"),
    ("rank-api", "SEO_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR"),
    ("backend-api", "SEO_DB_HOST", "post gres", "host name"),
    ("backend-api", "SEO_DB_PORT", "postgres", "integer"),
    ("backend-api", "SEO_REDIS_PORT", "-1", "integer"),
    ("backend-api", "SEO_RANK_API_URL", "ftp://rank-api", "http://"),
    ("backend-api", "SEO_RANK_API_URL", "rank-api:8080", "http://"),
    ("backend-api", "SEO_RANK_API_TIMEOUT_S", "0", "greater than 0"),
    ("backend-api", "SEO_RANK_API_TIMEOUT_S", "soon", "number"),
    ("api-gateway", "SEO_BACKEND_URLS", "http://a,,http://b", "comma-separated"),
    ("api-gateway", "SEO_BACKEND_URLS", "http://a,backend:80", "http://"),
    ("api-gateway", "SEO_UPSTREAM_TIMEOUT_S", "-1", "number"),
    ("api-gateway", "SEO_RATE_LIMIT_RPS", "fast", "number"),
    ("api-gateway", "SEO_RATE_LIMIT_STATUS", "200", "between 400 and 599"),
    ("api-gateway", "SEO_ROUTES", "rank,search", "rank, keywords, report"),
    ("api-gateway", "SEO_DATA_DIR", "data", "absolute"),
    ("api-gateway", "SEO_REDIS_PORT", "six", "integer"),
    ("frontend", "SEO_GATEWAY_URL", "https://api-gateway", "http://"),
    ("worker", "SEO_WORKER_INTERVAL_S", "0", "greater than 0"),
    ("traffic", "SEO_TRAFFIC_RPS", "0", "greater than 0"),
    ("traffic", "SEO_TRAFFIC_CONCURRENCY", "0", "between 1 and 256"),
    ("traffic", "SEO_TRAFFIC_CONCURRENCY", "many", "between 1 and 256"),
    ("rank-api", "SEO_FAULT_ERROR_SHARE", "1.5", "at most 1"),
    ("rank-api", "SEO_FAULT_ERROR_SHARE", "nan", "number"),
    ("rank-api", "SEO_FAULT_LATENCY_MS", "-5", "integer"),
    ("rank-api", "SEO_FAULT_LATENCY_MS", "1.5", "integer"),
    ("rank-api", "SEO_FAULT_EXCEPTION_INPUTS", "(unclosed", "regular expression"),
    ("rank-api", "SEO_FAULT_LEAK_KB_PER_REQUEST", "lots", "integer"),
    ("rank-api", "SEO_FAULT_RACE", "maybe", "true or false"),
    ("rank-api", "SEO_FAULT_STARTUP_MEMORY_MB", "-1", "integer"),
    ("api-gateway", "SEO_FAULT_CACHE_POISON", "2", "true or false"),
    ("api-gateway", "SEO_FAULT_CACHE_POISON", "true", "needs SEO_REDIS_HOST"),
]


@pytest.mark.parametrize("role,var,value,allowed", BAD_VALUES,
                         ids=["%s-%s=%s" % (r, v, x) for r, v, x, _allowed in BAD_VALUES])
def test_bad_values(in_process, role, var, value, allowed):
    rc, lines, err = in_process(role, {var: value})
    rec = check_one_error(rc, lines, err, var, repr(value.strip()), allowed)
    assert rec["service"] == role


def test_password_and_password_file_are_exclusive(tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("x")
    rc, lines, err = run_role("backend-api", {"SEO_DB_PASSWORD_FILE": str(pwfile)})
    check_one_error(rc, lines, err, "SEO_DB_PASSWORD_FILE", None, "only one")


def test_missing_password_file(tmp_path):
    missing = str(tmp_path / "nope")
    rc, lines, err = run_role("backend-api", {"SEO_DB_PASSWORD": None, "SEO_DB_PASSWORD_FILE": missing})
    rec = check_one_error(rc, lines, err, "SEO_DB_PASSWORD_FILE", repr(missing), "readable file")
    assert "FileNotFoundError" in rec["msg"]


def test_empty_password_file(tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("\n")
    rc, lines, err = run_role("backend-api", {"SEO_DB_PASSWORD": None, "SEO_DB_PASSWORD_FILE": str(pwfile)})
    check_one_error(rc, lines, err, "SEO_DB_PASSWORD_FILE", None, "empty")


def test_unreadable_password_file_logs_permission_error():
    base = tempfile.mkdtemp(prefix="seo-perm-")
    try:
        os.chmod(base, 0o755)
        program = os.path.join(base, "seo_service.py")
        shutil.copy(SERVICE, program)
        os.chmod(program, 0o644)
        secret = os.path.join(base, "db-password")
        with open(secret, "w") as handle:
            handle.write("hunter2-db\n")
        os.chmod(secret, 0o600)
        cmd = [PYTHON, program]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("needs setpriv to drop root privileges")
            drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            usable = [py for py in (PYTHON, "/usr/bin/python3", "/usr/local/bin/python3")
                      if subprocess.run(drop + [py, "-c", "pass"], capture_output=True, check=False).returncode == 0]
            if not usable:
                pytest.skip("no Python interpreter that the unprivileged user can run")
            cmd = drop + [usable[0], program]
        else:
            os.chmod(secret, 0o000)
        env = {"PATH": os.environ.get("PATH", ""), "SEO_ROLE": "backend-api", **VALID["backend-api"],
               "SEO_DB_PASSWORD_FILE": secret}
        env.pop("SEO_DB_PASSWORD")
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=30, check=False)
        rec = check_one_error(proc.returncode, proc.stdout.decode().splitlines(), proc.stderr.decode(),
                              "SEO_DB_PASSWORD_FILE", repr(secret), "readable file")
        assert "PermissionError" in rec["msg"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("role,var,value", [("backend-api", "SEO_DB_NAME", None), ("rank-api", "SEO_PORT", "x"),
                                            ("api-gateway", "SEO_ROUTES", "rank,nope"),
                                            ("traffic", "SEO_TRAFFIC_RPS", "-1")])
def test_real_process_exits_2_with_one_line(role, var, value):
    rc, lines, err = run_role(role, {var: value})
    check_one_error(rc, lines, err, var, "<unset>" if value is None else repr(value))


def test_missing_secret_is_not_echoed():
    rc, lines, err = run_role("backend-api", {"SEO_API_KEY": None})
    rec = check_one_error(rc, lines, err, "SEO_API_KEY", "<unset>")
    assert rec["value"] == "<unset>"


def test_role_argument_overrides_nothing_else(spawn):
    proc = spawn("rank-api", {"SEO_ROLE": None}, extra_args=("--role", "rank-api"))
    assert proc.get("/health").json()["service"] == "rank-api"


def test_unknown_seo_variable_is_a_warning_not_fatal(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_LATENCY": "500"})
    assert proc.get("/health").status == 200
    warnings = [r for r in proc.logs("WARNING") if "SEO_FAULT_LATENCY" in r["msg"]]
    assert warnings, proc.stdout()


def test_fault_knobs_are_off_by_default(seo):
    cfg = seo.load_config({"SEO_ROLE": "rank-api"})
    assert cfg.fault_error_share == 0.0
    assert cfg.fault_latency_ms == 0
    assert cfg.fault_exception_inputs is None
    assert cfg.fault_leak_kb == 0
    assert cfg.fault_race is False
    assert cfg.fault_startup_memory_mb == 0
    assert cfg.fault_cache_poison is False


def test_defaults_match_the_contract(seo):
    backend = seo.load_config({"SEO_ROLE": "backend-api", **VALID["backend-api"]})
    assert (backend.port, backend.db_port, backend.redis_port, backend.rank_api_timeout) == (8080, 5432, 6379, 2.0)
    assert backend.log_level == "INFO"
    gateway = seo.load_config({"SEO_ROLE": "api-gateway", **VALID["api-gateway"]})
    assert gateway.upstream_timeout == 3.0 and gateway.rate_limit_rps == 0 and gateway.rate_limit_status == 503
    assert gateway.routes == {"rank", "keywords", "report"} and gateway.redis_host is None
    traffic = seo.load_config({"SEO_ROLE": "traffic", **VALID["traffic"]})
    assert (traffic.traffic_rps, traffic.traffic_concurrency) == (5.0, 4)
    worker = seo.load_config({"SEO_ROLE": "worker", **VALID["worker"], "SEO_BACKEND_URLS": "http://a:80, http://b"})
    assert worker.worker_interval == 10.0 and worker.backend_urls == ["http://a:80", "http://b"]
