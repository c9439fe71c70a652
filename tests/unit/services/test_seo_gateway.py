"""api-gateway: proxying, status mapping, rate limit, routes, journal and response cache."""

import json
import os

import pytest

from conftest import backend_env, closed_port, gateway_env, http, kw_path, new_db, stub_rank


@pytest.fixture(scope="module")
def gateway(spawn_module, backend, redis_server, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("gateway-data")
    return spawn_module("api-gateway", gateway_env([backend.url], data_dir, SEO_REDIS_HOST=redis_server.host,
                                                   SEO_REDIS_PORT=redis_server.port))


def journal_lines(proc):
    path = os.path.join(proc.env["SEO_DATA_DIR"], "requests.log")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_health_checks_backend(gateway, backend):
    resp = gateway.get("/health")
    assert resp.status == 200, resp
    body = resp.json()
    assert body["checks"] == {"backend-api": "ok"}
    assert body["cache"] == "ok"


def test_proxies_each_route(gateway, backend, pg_server, backend_db):
    listing = gateway.get("/api/keywords")
    assert listing.status == 200 and listing.headers["x-upstream"] == backend.url
    assert listing.json()["count"] >= 8
    created = gateway.post("/api/keywords", {"keyword": "via gateway"})
    assert created.status == 201, created
    assert pg_server.psql("SELECT count(*) FROM keywords WHERE keyword = 'via gateway'", db=backend_db) == "1"
    report = gateway.get("/api/report")
    assert report.status == 200 and "keywords_tracked" in report.json()
    assert gateway.get("/api/nothing-here").status == 404
    assert gateway.get("/").status == 404


def test_rank_route_uses_the_redis_response_cache(gateway, backend, redis_server):
    keyword = "what is seo?"
    redis_server.cmd("DEL", "gw:rank:" + keyword)
    before = backend.metrics().total("seo_http_requests_total", route="/api/keywords/{keyword}/rank")
    first = gateway.get(kw_path(keyword))
    assert first.status == 200 and first.headers["x-cache"] == "MISS", first
    assert first.json()["rank"] == stub_rank(keyword)
    entry = json.loads(redis_server.cmd("GET", "gw:rank:" + keyword))
    assert entry["v"] == 1 and entry["body"]["rank"] == stub_rank(keyword)
    assert 0 < redis_server.cmd("TTL", "gw:rank:" + keyword) <= 30
    second = gateway.get(kw_path(keyword))
    assert second.status == 200 and second.headers["x-cache"] == "HIT"
    assert second.json()["rank"] == stub_rank(keyword)
    after = backend.metrics().total("seo_http_requests_total", route="/api/keywords/{keyword}/rank")
    assert after == before + 1, "the cache hit must not reach the backend"


def test_request_journal_is_written(gateway):
    resp = gateway.get("/api/keywords", headers={"X-Request-Id": "journal-check-1"})
    assert resp.status == 200 and resp.headers["x-request-id"] == "journal-check-1"
    entries = [e for e in journal_lines(gateway) if e["request_id"] == "journal-check-1"]
    assert entries and entries[0]["route"] == "keywords" and entries[0]["path"] == "/api/keywords"


def test_round_robin_over_backends(spawn, pg_server, redis_server, rank_api, tmp_path):
    db = new_db(pg_server)
    env = backend_env(pg_server, redis_server, rank_api.url, db)
    one, two = spawn("backend-api", env), spawn("backend-api", env)
    gw = spawn("api-gateway", gateway_env([one.url, two.url], tmp_path / "data"))
    upstreams = [gw.get("/api/keywords").headers["x-upstream"] for _request in range(6)]
    assert upstreams == [one.url, two.url] * 3
    for proc in (one, two):
        assert proc.metrics().total("seo_http_requests_total", route="/api/keywords", code="200") == 3


def test_refused_backend_gives_502(spawn, tmp_path):
    gw = spawn("api-gateway", gateway_env(["http://127.0.0.1:%d" % closed_port()], tmp_path / "data"))
    resp = gw.get("/api/keywords")
    assert resp.status == 502, resp
    assert "connection refused" in resp.json()["error"]
    assert gw.wait_log("upstream connection refused")
    health = gw.get("/health")
    assert health.status == 503 and health.json()["failing"] == ["backend-api"]
    assert "connection refused" in health.json()["checks"]["backend-api"]
    assert gw.metrics().total("seo_upstream_requests_total", upstream="backend-api", outcome="refused") >= 1


def test_slow_backend_gives_504(spawn, pg_server, redis_server, rank_api, backend_db, tmp_path):
    slow = spawn("backend-api", backend_env(pg_server, redis_server, rank_api.url, backend_db,
                                            SEO_FAULT_LATENCY_MS="2000"))
    gw = spawn("api-gateway", gateway_env([slow.url], tmp_path / "data", SEO_UPSTREAM_TIMEOUT_S="0.4"))
    resp = gw.get("/api/keywords")
    assert resp.status == 504, resp
    assert gw.wait_log("upstream timeout after 0.4s")
    assert gw.metrics().total("seo_upstream_requests_total", upstream="backend-api", outcome="timeout") == 1


def test_rank_api_latency_gives_504_through_the_gateway(spawn, pg_server, redis_server, backend_db, tmp_path):
    slow_rank = spawn("rank-api", {"SEO_FAULT_LATENCY_MS": "1500"})
    be = spawn("backend-api", backend_env(pg_server, redis_server, slow_rank.url, backend_db,
                                          SEO_RANK_API_TIMEOUT_S="0.3"))
    gw = spawn("api-gateway", gateway_env([be.url], tmp_path / "data"))
    resp = gw.get(kw_path("timeout via gateway"))
    assert resp.status == 504, resp
    assert "rank api timeout" in resp.json()["error"]
    assert be.wait_log("rank api timeout")
    assert gw.wait_log("backend-api answered 504")
    assert gw.metrics().total("seo_http_requests_total", code="504") == 1


def test_wrong_api_key_gives_502(spawn, backend, tmp_path):
    gw = spawn("api-gateway", gateway_env([backend.url], tmp_path / "data", key="stale-key"))
    resp = gw.get("/api/keywords")
    assert resp.status == 502, resp
    assert "upstream rejected api key" in resp.json()["error"]
    assert gw.wait_log("upstream rejected api key")
    assert gw.metrics().total("seo_upstream_requests_total", upstream="backend-api", outcome="http_4xx") == 1
    assert "stale-key" not in gw.stdout()


@pytest.mark.parametrize("status", [None, "429"])
def test_rate_limit(spawn, backend, tmp_path, status):
    env = gateway_env([backend.url], tmp_path / "data", SEO_RATE_LIMIT_RPS="1")
    if status:
        env["SEO_RATE_LIMIT_STATUS"] = status
    gw = spawn("api-gateway", env)
    codes = [gw.get("/api/keywords").status for _request in range(10)]
    limited = int(status or 503)
    assert codes[0] == 200
    assert codes.count(limited) >= 5, codes
    assert set(codes) <= {200, limited}
    assert gw.wait_log("rate limit exceeded")
    assert gw.get("/health").status == 200  # probes are not rate limited


def test_no_rate_limit_by_default(gateway):
    codes = [gateway.get("/api/keywords").status for _request in range(15)]
    assert codes == [200] * 15


def test_missing_route_gives_500(spawn, backend, tmp_path):
    gw = spawn("api-gateway", gateway_env([backend.url], tmp_path / "data", SEO_ROUTES="rank,keywords"))
    resp = gw.get("/api/report")
    assert resp.status == 500, resp
    assert resp.json()["error"] == "route not configured"
    assert gw.wait_log("route not configured: report")
    assert gw.get("/api/keywords").status == 200
    assert gw.get(kw_path("seo tools")).status == 200
    assert gw.get("/health").json()["routes"] == ["keywords", "rank"]


def test_full_disk_gives_507(spawn, backend, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.symlink("/dev/full", data / "requests.log")
    gw = spawn("api-gateway", gateway_env([backend.url], data))
    resp = gw.get("/api/keywords")
    assert resp.status == 507, resp
    errors = gw.wait_log("request journal write failed")
    assert "No space left on device" in errors[0]["msg"]
    before = backend.metrics().total("seo_http_requests_total", route="/api/keywords")
    assert gw.get("/api/keywords").status == 507
    assert backend.metrics().total("seo_http_requests_total", route="/api/keywords") == before


def test_data_dir_gone_gives_507_and_recovers(spawn, backend, tmp_path):
    data = tmp_path / "data"
    gw = spawn("api-gateway", gateway_env([backend.url], data))
    assert data.is_dir(), "the gateway creates its data dir"
    assert gw.get("/api/keywords").status == 200
    (data / "requests.log").unlink()
    data.rmdir()
    data.write_text("not a directory")
    assert gw.get("/api/keywords").status == 507
    assert gw.wait_log("request journal write failed")
    data.unlink()
    data.mkdir()
    assert gw.get("/api/keywords").status == 200


def test_cache_poison_persists_until_flushdb(spawn, backend, own_redis, tmp_path):
    env = gateway_env([backend.url], tmp_path / "data", SEO_REDIS_HOST=own_redis.host,
                      SEO_REDIS_PORT=own_redis.port)
    bad = spawn("api-gateway", dict(env, SEO_FAULT_CACHE_POISON="true"))
    keyword = "poisoned keyword"
    assert bad.get(kw_path(keyword)).status == 200  # miss: fetched, then a malformed entry written
    assert own_redis.cmd("TTL", "gw:rank:" + keyword) == -1, "the bad entry has no expiry"
    resp = bad.get(kw_path(keyword))
    assert resp.status == 500 and resp.json()["error"] == "corrupt cache entry"
    assert bad.wait_log("corrupt cache entry gw:rank:" + keyword)
    assert bad.stop() == 0

    good = spawn("api-gateway", env)  # the rolled-back version
    for _request in range(3):
        assert good.get(kw_path(keyword)).status == 500
    assert good.wait_log("corrupt cache entry")
    assert good.get(kw_path("other keyword")).status == 200  # only poisoned keys fail

    assert own_redis.cmd("FLUSHDB") == "OK"
    first = good.get(kw_path(keyword))
    assert first.status == 200 and first.headers["x-cache"] == "MISS"
    second = good.get(kw_path(keyword))
    assert second.status == 200 and second.headers["x-cache"] == "HIT"
    assert good.metrics().value("seo_error_rate", service="api-gateway") == pytest.approx(3 / 6)


def test_cache_down_is_not_fatal(spawn, backend, tmp_path):
    gw = spawn("api-gateway", gateway_env([backend.url], tmp_path / "data", SEO_REDIS_HOST="127.0.0.1",
                                          SEO_REDIS_PORT=closed_port()))
    resp = gw.get(kw_path("seo tools"))
    assert resp.status == 200, resp
    health = gw.get("/health")
    assert health.status == 200 and health.json()["cache"] == "connection refused"
    assert gw.wait_log("response cache unavailable", level="WARNING")


def test_exception_inputs_on_gateway(spawn, backend, tmp_path):
    gw = spawn("api-gateway", gateway_env([backend.url], tmp_path / "data", SEO_FAULT_EXCEPTION_INPUTS=r"\+\+"))
    assert gw.get(kw_path("c++ tutorial")).status == 500
    assert gw.get(kw_path("python tutorial")).status == 200
    errors = gw.wait_log("unhandled exception")
    assert "ValueError" in errors[0]["traceback"]


def test_head_request(gateway):
    resp = http("HEAD", gateway.url + "/health")
    assert resp.status == 200 and resp.body == b""
    assert int(resp.headers["content-length"]) > 0


def test_journal_rotates(seo, tmp_path, monkeypatch):
    monkeypatch.setattr(seo, "JOURNAL_MAX_BYTES", 1000)
    cfg = seo.load_config({"SEO_ROLE": "api-gateway", "SEO_BACKEND_URLS": "http://127.0.0.1:1",
                           "SEO_BACKEND_API_KEY": "k", "SEO_DATA_DIR": str(tmp_path)})
    gw = seo.ApiGateway(cfg)

    class FakeRequest:
        request_id, method, path, client = "r", "GET", "/api/keywords", "127.0.0.1"

    for _request in range(30):
        gw.write_journal(FakeRequest(), "keywords")
    assert (tmp_path / "requests.log.1").stat().st_size > 1000
    assert (tmp_path / "requests.log").stat().st_size <= 1000 + 200
