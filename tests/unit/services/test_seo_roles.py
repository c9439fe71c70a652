"""rank-api, frontend, worker, traffic; /metrics format; logs; SIGTERM; memory footprint."""

import json
import signal
import socket
import struct
import threading
import time
import urllib.parse

import pytest

from conftest import backend_env, closed_port, gateway_env, http, kw_path, new_db, parse_metrics, stub_rank, \
    wait_for, wait_metrics

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(spawn_module, backend, tmp_path_factory):
    return spawn_module("api-gateway", gateway_env([backend.url], tmp_path_factory.mktemp("gw")))


# ----------------------------------------------------------------------------- rank-api

def test_rank_api_is_deterministic(rank_api):
    for keyword in ("seo tools", "caf\u00e9 marketing", "c++ tutorial"):
        first = rank_api.get("/rank?keyword=" + urllib.parse.quote(keyword)).json()
        second = rank_api.get("/rank?keyword=" + urllib.parse.quote(keyword)).json()
        assert first == second
        assert first["keyword"] == keyword and first["rank"] == stub_rank(keyword)
        assert 10 <= first["search_volume"] < 50010
    assert rank_api.get("/rank").status == 400
    assert rank_api.get("/rank?keyword=").status == 400
    assert rank_api.get("/health").json()["checks"] == {}


# ----------------------------------------------------------------------------- metrics + logs

def test_metrics_format_and_families(backend, gateway):
    gateway.get(kw_path("metrics keyword"))
    gateway.get("/api/keywords")
    for proc in (backend, gateway):
        metrics = proc.metrics()
        fams = metrics.families
        assert fams["seo_http_requests_total"]["type"] == "counter"
        assert fams["seo_http_request_duration_seconds"]["type"] == "histogram"
        assert fams["seo_error_rate"]["type"] == "gauge"
        assert fams["seo_upstream_requests_total"]["type"] == "counter"
        assert fams["seo_process_resident_memory_bytes"]["type"] == "gauge"
        for name, labels, _value in metrics.samples("seo_http_requests_total"):
            assert set(labels) == {"service", "route", "code"} and labels["service"] == proc.role
            assert "%20" not in labels["route"] and "metrics keyword" not in labels["route"]
        routes = {labels["route"] for _name, labels, _value in metrics.samples("seo_http_requests_total")}
        assert "/api/keywords/{keyword}/rank" in routes
        for _name, labels, _value in metrics.samples("seo_upstream_requests_total"):
            assert labels["outcome"] in ("ok", "http_4xx", "http_5xx", "timeout", "refused", "error")
        buckets = [l["le"] for _name, l, _value in metrics.samples("seo_http_request_duration_seconds_bucket")
                   if l["route"] == "/api/keywords/{keyword}/rank"]
        assert buckets[-1] == "+Inf" and len(buckets) >= 5
        assert 0 < metrics.value("seo_process_resident_memory_bytes", service=proc.role)
    assert gateway.metrics().total("seo_upstream_requests_total", upstream="backend-api", outcome="ok") >= 2


def test_metrics_parser_rejects_broken_expositions():
    good = ('# HELP x_total X.\n# TYPE x_total counter\nx_total{a="1"} 2\n'
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.3\nh_count 2\n')
    parse_metrics(good)
    for broken in (good.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 0'),  # not cumulative
                   good.replace("h_count 2", "h_count 3"),
                   good.replace("# TYPE x_total counter\n", ""),
                   good.replace('{a="1"}', '{a=1}'),
                   good[:-1]):
        with pytest.raises(AssertionError):
            parse_metrics(broken)


def test_error_rate_is_the_5xx_share_of_application_requests(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_EXCEPTION_INPUTS": "^bad"})
    for i in range(4):
        assert proc.get("/rank?keyword=good%d" % i).status == 200
        assert proc.get("/rank?keyword=bad%d" % i).status == 500
    assert proc.get("/rank").status == 400  # 4xx counts as a request, not as an error
    for _round in range(5):
        proc.get("/health")
        proc.get("/metrics")
    metrics = proc.metrics()
    assert metrics.value("seo_error_rate", service="rank-api") == pytest.approx(4 / 9)
    assert metrics.total("seo_http_requests_total", route="/rank", code="500") == 4
    assert metrics.total("seo_http_requests_total", route="/health", code="200") == 5
    assert metrics.total("seo_http_request_duration_seconds_count", route="/rank") == 9


def test_unmatched_paths_use_a_fixed_route_label(spawn):
    proc = spawn("rank-api")
    for i in range(3):
        assert proc.get("/random/path/%d" % i).status == 404
    assert proc.post("/rank", {"x": 1}).status == 405
    routes = {l["route"] for _name, l, _value in proc.metrics().samples("seo_http_requests_total")}
    assert "unmatched" in routes and not any(r.startswith("/random") for r in routes)


def test_logs_are_json_lines_with_levels(backend, gateway):
    gateway.get("/api/keywords")
    for proc in (backend, gateway):
        lines = proc.stdout().splitlines()
        assert lines
        for line in lines:
            rec = json.loads(line)
            assert rec["level"] in ("DEBUG", "INFO", "WARNING", "ERROR")
            assert rec["service"] == proc.role and rec["msg"] and rec["ts"].endswith("Z")
        assert any("listening" in json.loads(line)["msg"] for line in lines)


def test_log_level_filters(spawn):
    proc = spawn("rank-api", {"SEO_LOG_LEVEL": "ERROR"})
    proc.get("/rank?keyword=x")
    proc.get("/rank")
    assert proc.logs() == []
    debug = spawn("rank-api", {"SEO_LOG_LEVEL": "debug"})
    debug.get("/health")
    assert debug.logs("DEBUG")


# ----------------------------------------------------------------------------- frontend

def test_frontend_renders_keywords(spawn, gateway):
    front = spawn("frontend", {"SEO_GATEWAY_URL": gateway.url})
    page = front.get("/")
    assert page.status == 200, page
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>SEO Tool</title>" in page.text and "seo tools" in page.text
    assert "keywords tracked" in page.text
    health = front.get("/health")
    assert health.status == 200 and health.json()["checks"] == {"api-gateway": "ok"}


def test_frontend_with_gateway_down(spawn):
    front = spawn("frontend", {"SEO_GATEWAY_URL": "http://127.0.0.1:%d" % closed_port()})
    page = front.get("/")
    assert page.status == 502 and "temporarily unavailable" in page.text
    assert front.wait_log("api-gateway connection refused")
    health = front.get("/health")
    assert health.status == 503 and health.json()["failing"] == ["api-gateway"]


def test_health_failures_propagate_with_the_root_cause(spawn, own_pg, redis_server, rank_api, tmp_path):
    db = new_db(own_pg)
    be = spawn("backend-api", backend_env(own_pg, redis_server, rank_api.url, db))
    gw = spawn("api-gateway", gateway_env([be.url], tmp_path / "data"))
    front = spawn("frontend", {"SEO_GATEWAY_URL": gw.url})
    assert front.get("/health").status == 200
    own_pg.stop()
    health = front.get("/health")
    assert health.status == 503
    detail = health.json()["checks"]["api-gateway"]
    assert "postgres" in detail and "connection refused" in detail, detail
    assert front.get("/").status == 502


# ----------------------------------------------------------------------------- worker

def test_worker_refreshes_ranks(spawn, pg_server, redis_server, rank_api):
    db = new_db(pg_server)
    be = spawn("backend-api", backend_env(pg_server, redis_server, rank_api.url, db))
    worker = spawn("worker", {"SEO_BACKEND_URLS": be.url, "SEO_BACKEND_API_KEY": "backend-key-123",
                              "SEO_WORKER_INTERVAL_S": "0.3"})
    wait_for(lambda: int(pg_server.psql("SELECT count(*) FROM rank_history", db=db)) >= 8, 20, 0.3,
             "rank_history rows written by the worker")
    metrics = worker.metrics()
    assert metrics.total("seo_worker_refresh_total", outcome="ok") >= 8
    assert metrics.total("seo_upstream_requests_total", upstream="backend-api", outcome="ok") >= 9
    assert metrics.value("seo_worker_last_success_timestamp_seconds", service="worker") > 0
    assert worker.get("/health").status == 200
    assert worker.wait_log("keywords refreshed", level="INFO")


def test_worker_with_wrong_key_and_dead_backend(spawn, backend):
    worker = spawn("worker", {"SEO_BACKEND_URLS": backend.url, "SEO_BACKEND_API_KEY": "nope",
                              "SEO_WORKER_INTERVAL_S": "0.2"})
    assert "HTTP 401" in worker.wait_log("refresh cycle failed")[0]["msg"]
    dead = spawn("worker", {"SEO_BACKEND_URLS": "http://127.0.0.1:%d" % closed_port(),
                            "SEO_BACKEND_API_KEY": "x", "SEO_WORKER_INTERVAL_S": "0.2"})
    assert dead.wait_log("connection refused")
    assert dead.get("/health").status == 503


# ----------------------------------------------------------------------------- traffic

def test_traffic_sends_a_steady_mix(spawn, gateway):
    before = gateway.metrics().total("seo_http_requests_total")
    traffic = spawn("traffic", {"SEO_GATEWAY_URL": gateway.url, "SEO_TRAFFIC_RPS": "25",
                                "SEO_TRAFFIC_CONCURRENCY": "3"})
    wait_metrics(traffic, lambda m: m.total("seo_client_requests_total") >= 40, "40 traffic requests")
    assert traffic.stop() == 0
    assert gateway.metrics().total("seo_http_requests_total") - before >= 40
    routes = {l["route"] for _name, l, _value in gateway.metrics().samples("seo_http_requests_total")}
    assert {"/api/keywords/{keyword}/rank", "/api/keywords"} <= routes
    log = traffic.stdout()
    assert "sending traffic" in log and "stopped" in log


def test_traffic_client_metrics(spawn, gateway):
    traffic = spawn("traffic", {"SEO_GATEWAY_URL": gateway.url, "SEO_TRAFFIC_RPS": "20",
                                "SEO_TRAFFIC_CONCURRENCY": "2", "SEO_TRAFFIC_KEYWORDS": "seo tools,rank tracker"})
    metrics = wait_metrics(traffic, lambda m: m.total("seo_client_requests_total") >= 15, "client metrics")
    assert metrics.families["seo_client_request_duration_seconds"]["type"] == "histogram"
    assert metrics.value("seo_client_error_rate", service="traffic") == 0.0
    assert metrics.total("seo_upstream_requests_total", upstream="api-gateway", outcome="ok") >= 15
    health = traffic.get("/health").json()
    assert health["status"] == "ok" and health["sent"] >= 15


def test_traffic_sees_a_dead_gateway(spawn):
    traffic = spawn("traffic", {"SEO_GATEWAY_URL": "http://127.0.0.1:%d" % closed_port(),
                                "SEO_TRAFFIC_RPS": "20", "SEO_TRAFFIC_CONCURRENCY": "2"})
    metrics = wait_metrics(traffic, lambda m: m.total("seo_client_requests_total", code="refused") >= 5,
                           "refused client requests")
    assert metrics.value("seo_client_error_rate", service="traffic") == 1.0
    assert traffic.wait_log("request failed", level="WARNING")


# ----------------------------------------------------------------------------- lifecycle

def test_sigterm_drains_in_flight_requests(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_LATENCY_MS": "1000"})
    result = {}

    def slow_request():
        result["resp"] = proc.get("/rank?keyword=drain")

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_metrics(proc, lambda m: m.value("seo_http_requests_in_flight", service="rank-api") >= 2,
                 "the slow request in flight")
    proc.signal(signal.SIGTERM)
    thread.join(30)
    assert result["resp"].status == 200
    assert proc.proc.wait(30) == 0
    messages = [r["msg"] for r in proc.logs()]
    assert "shutdown signal received, draining requests" in messages and messages[-1] == "stopped"


@pytest.mark.parametrize("role", ["backend-api", "api-gateway", "frontend", "worker", "rank-api", "traffic"])
def test_every_role_stops_cleanly_on_sigterm_and_stays_small(spawn, role, pg_server, redis_server, tmp_path,
                                                             rank_api, backend_db):
    env = {
        "backend-api": backend_env(pg_server, redis_server, rank_api.url, backend_db),
        "api-gateway": gateway_env(["http://127.0.0.1:%d" % closed_port()], tmp_path / "d"),
        "frontend": {"SEO_GATEWAY_URL": "http://127.0.0.1:%d" % closed_port()},
        "worker": {"SEO_BACKEND_URLS": "http://127.0.0.1:%d" % closed_port(), "SEO_BACKEND_API_KEY": "k"},
        "rank-api": {},
        "traffic": {"SEO_GATEWAY_URL": "http://127.0.0.1:%d" % closed_port(), "SEO_TRAFFIC_RPS": "1"},
    }[role]
    proc = spawn(role, env)
    proc.get("/health")
    rss = proc.rss()
    print("idle RSS %s: %.1f MiB" % (role, rss / MIB))
    assert rss < 45 * MIB, "%s uses %.1f MiB at idle" % (role, rss / MIB)
    started = time.monotonic()
    assert proc.stop() == 0
    assert time.monotonic() - started < 10
    assert proc.stderr() == ""


def test_head_and_livez(spawn):
    proc = spawn("rank-api")
    head = http("HEAD", proc.url + "/health")
    assert head.status == 200 and head.body == b""
    assert proc.get("/livez").json() == {"status": "ok", "service": "rank-api", "pid": proc.proc.pid}


def test_broken_clients_are_logged_as_json_not_stderr(spawn):
    proc = spawn("rank-api", {"SEO_LOG_LEVEL": "DEBUG"})
    garbage = socket.create_connection(("127.0.0.1", proc.port))
    garbage.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    assert b"Bad request" in garbage.recv(4096)
    garbage.close()
    for partial in (b"POST /rank HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial body",
                    b"GET /rank?keyword=x HTTP/1.1\r\nHost: x\r\n"):
        reset = socket.create_connection(("127.0.0.1", proc.port))
        reset.sendall(partial)
        time.sleep(0.2)
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()  # RST while the server waits for the body / the headers
    big = http("POST", proc.url + "/rank", body=b"x" * (70 * 1024))
    assert big.status == 413
    assert proc.get("/health").status == 200
    wait_for(lambda: [r for r in proc.logs("DEBUG") if "error while handling a connection" in r["msg"]], 10, 0.1,
             "the header-phase reset logged as JSON")
    assert [r for r in proc.logs("DEBUG") if "client went away while sending" in r["msg"]]
    assert proc.stderr() == ""
    assert proc.errors() == []
    assert proc.metrics().total("seo_http_requests_total", code="500") == 0
