"""The fault knobs: each one off by default, each one really changes behaviour when on."""

import threading
import time
import urllib.parse

import pytest

from conftest import backend_env, kw_path

MIB = 1024 * 1024


def rank(proc, keyword="seo tools", **kw):
    return proc.get("/rank?keyword=" + urllib.parse.quote(keyword), **kw)


def hammer(proc, threads=8, per_thread=15):
    codes = []
    lock = threading.Lock()

    def run(n):
        for i in range(per_thread):
            status = rank(proc, "kw %d %d" % (n, i)).status
            with lock:
                codes.append(status)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    return codes


def test_error_share_is_roughly_the_configured_share(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_ERROR_SHARE": "0.3"})
    codes = [rank(proc, "kw %d" % i).status for i in range(200)]
    failures = codes.count(500)
    assert set(codes) == {200, 500}
    assert 30 <= failures <= 90, failures  # 60 expected; about 4.5 sigma either side
    metrics = proc.metrics()
    assert metrics.value("seo_error_rate", service="rank-api") == pytest.approx(failures / 200)
    assert metrics.total("seo_http_requests_total", route="/rank", code="500") == failures
    assert metrics.total("seo_http_errors_total", route="/rank", code="500") == failures
    assert metrics.families["seo_http_errors_total"]["type"] == "counter"
    assert len(proc.errors("request failed: GET /rank")) == failures
    errors = proc.errors("unhandled exception")
    assert len(errors) == failures
    assert "ZeroDivisionError" in errors[0]["traceback"]
    assert proc.get("/health").status == 200  # probes are never failed by the knob


def test_error_share_one_and_zero(spawn):
    always = spawn("rank-api", {"SEO_FAULT_ERROR_SHARE": "1"})
    assert [rank(always).status for _request in range(10)] == [500] * 10
    never = spawn("rank-api", {"SEO_FAULT_ERROR_SHARE": "0"})
    assert [rank(never).status for _request in range(30)] == [200] * 30
    assert never.errors() == []


def test_latency_is_added_to_application_requests(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_LATENCY_MS": "400"})
    for _request in range(3):
        resp = rank(proc)
        assert resp.status == 200 and resp.elapsed >= 0.4
    metrics = proc.metrics()
    assert metrics.value("seo_http_request_duration_seconds_sum", route="/rank") >= 1.2
    assert metrics.value("seo_http_request_duration_seconds_bucket", route="/rank", le="0.25") == 0


def test_exception_inputs(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_EXCEPTION_INPUTS": "^boom|[?]"})
    assert rank(proc, "boom box").status == 500
    assert rank(proc, "what is seo?").status == 500
    assert rank(proc, "the boom").status == 200
    assert rank(proc, "fine keyword").status == 200
    errors = proc.errors("unhandled exception")
    assert len(errors) == 2
    assert "Traceback" in errors[0]["traceback"] and "keyword tokenizer" in errors[0]["traceback"]
    assert errors[0]["exc_type"] == "ValueError"


def test_exception_inputs_on_backend(spawn, pg_server, redis_server, rank_api, backend_db):
    proc = spawn("backend-api", backend_env(pg_server, redis_server, rank_api.url, backend_db,
                                            SEO_FAULT_EXCEPTION_INPUTS="%"))
    assert proc.api("POST", "/api/keywords", {"keyword": "100% organic"}).status == 500
    assert proc.api("GET", kw_path("100% organic")).status == 500
    assert proc.api("GET", kw_path("organic")).status == 200
    assert len(proc.errors("unhandled exception")) == 2


def test_leak_keeps_memory(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_LEAK_KB_PER_REQUEST": "1024"})
    before = proc.rss()
    for i in range(40):
        assert rank(proc, "kw %d" % i).status == 200
    grown = proc.rss() - before
    assert grown >= 30 * MIB, grown / MIB
    time.sleep(0.5)
    assert proc.rss() - before >= 30 * MIB, "leaked memory must stay resident"


def test_no_leak_without_the_knob(spawn):
    proc = spawn("rank-api")
    for i in range(10):
        rank(proc, "warm %d" % i)
    before = proc.rss()
    for i in range(40):
        assert rank(proc, "kw %d" % i).status == 200
    assert proc.rss() - before < 10 * MIB


def test_race_gives_intermittent_500s_under_concurrency(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_RACE": "true"})
    sequential = [rank(proc, "seq %d" % i).status for i in range(10)]
    assert sequential == [200] * 10, "no concurrency, no race"
    codes = hammer(proc)
    assert codes.count(500) >= 1, codes
    assert codes.count(200) >= 1, codes
    assert set(codes) <= {200, 500}
    errors = proc.errors("inconsistent shared state")
    assert len(errors) == codes.count(500)


def test_no_race_without_the_knob(spawn):
    proc = spawn("rank-api")
    codes = hammer(proc)
    assert codes == [200] * len(codes)


def test_startup_memory_is_allocated_and_held(spawn):
    baseline = spawn("rank-api")
    heavy = spawn("rank-api", {"SEO_FAULT_STARTUP_MEMORY_MB": "64"})
    assert heavy.rss() >= baseline.rss() + 60 * MIB
    assert heavy.rss() >= 64 * MIB
    assert rank(heavy).status == 200


def test_faults_are_not_applied_to_probes(spawn):
    proc = spawn("rank-api", {"SEO_FAULT_ERROR_SHARE": "1", "SEO_FAULT_RACE": "true"})
    assert [proc.get("/health").status for _request in range(5)] == [200] * 5
    assert proc.get("/metrics").status == 200
    assert proc.metrics().value("seo_error_rate", service="rank-api") == 0.0
