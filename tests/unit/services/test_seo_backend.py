"""backend-api against a real PostgreSQL, a real redis and the rank-api stub."""

import json

import pytest

from conftest import API_KEY, PG_USERS, backend_env, closed_port, kw_path, new_db, stub_rank, wait_for


def test_schema_created_and_seeded_on_startup(backend, pg_server, backend_db):
    tables = pg_server.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                            "ORDER BY table_name", db=backend_db)
    assert tables.splitlines() == ["keywords", "rank_history"]
    assert int(pg_server.psql("SELECT count(*) FROM keywords", db=backend_db)) >= 8
    assert backend.errors() == []


def test_health_ok_checks_postgres_and_redis(backend):
    resp = backend.get("/health")
    assert resp.status == 200, resp
    body = resp.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"postgres": "ok", "redis": "ok", "rank-api": "ok"}


def test_health_fails_while_the_rank_api_is_slow(spawn, pg_server, redis_server, backend_db):
    slow = spawn("rank-api", {"SEO_FAULT_LATENCY_MS": "1500"})
    proc = spawn("backend-api", backend_env(pg_server, redis_server, slow.url, backend_db,
                                            SEO_RANK_API_TIMEOUT_S="0.3"))
    health = proc.get("/health")
    assert health.status == 503, health
    assert health.json()["failing"] == ["rank-api"]
    assert proc.get("/livez").status == 200


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_api_key_required(backend, key):
    resp = backend.api("GET", "/api/keywords", key=key)
    assert resp.status == 401, resp
    assert "api key" in resp.json()["error"]
    assert backend.wait_log("api key", level="WARNING")


def test_post_keyword_writes_a_row(backend, pg_server, backend_db):
    resp = backend.api("POST", "/api/keywords", {"keyword": "  O'Reilly   Books "})
    assert resp.status == 201, resp
    assert resp.json() == {"keyword": "o'reilly books", "created": True}
    count = pg_server.psql("SELECT count(*) FROM keywords WHERE keyword = 'o''reilly books'", db=backend_db)
    assert count == "1"
    again = backend.api("POST", "/api/keywords", {"keyword": "o'reilly books"})
    assert again.status == 200 and again.json()["created"] is False
    listing = backend.api("GET", "/api/keywords").json()
    assert "o'reilly books" in [item["keyword"] for item in listing["keywords"]]
    assert listing["count"] == len(listing["keywords"])


def test_post_keyword_is_injection_safe(backend, pg_server, backend_db):
    nasty = "x'); drop table keywords; --"
    resp = backend.api("POST", "/api/keywords", {"keyword": nasty})
    assert resp.status == 201, resp
    stored = pg_server.psql("SELECT keyword FROM keywords WHERE keyword LIKE 'x''); drop%'", db=backend_db)
    assert stored == nasty


@pytest.mark.parametrize("body", [b"not json", b'{"kw": "x"}', b'["x"]', json.dumps({"keyword": "x" * 200}).encode(),
                                  b'{"keyword": "   "}'])
def test_post_keyword_rejects_bad_bodies(backend, body):
    resp = backend.api("POST", "/api/keywords", body, headers={"Content-Type": "application/json"})
    assert resp.status == 400, resp


def test_rank_lookup_goes_to_rank_api_postgres_and_redis(backend, rank_api, pg_server, redis_server, backend_db):
    keyword = "caf\u00e9 marketing"
    redis_server.cmd("DEL", "rank:" + keyword)
    before_calls = rank_api.metrics().total("seo_http_requests_total", route="/rank")
    first = backend.api("GET", kw_path(keyword))
    assert first.status == 200, first
    data = first.json()
    assert data["keyword"] == keyword and data["rank"] == stub_rank(keyword) and data["cached"] is False
    assert first.headers["x-cache"] == "MISS"
    assert rank_api.metrics().total("seo_http_requests_total", route="/rank") == before_calls + 1
    rows = pg_server.psql("SELECT rank FROM rank_history WHERE keyword = '%s'" % keyword, db=backend_db)
    assert rows.splitlines() == [str(stub_rank(keyword))]
    cached = json.loads(redis_server.cmd("GET", "rank:" + keyword))
    assert cached["rank"] == stub_rank(keyword)
    assert 0 < redis_server.cmd("TTL", "rank:" + keyword) <= 60

    second = backend.api("GET", kw_path(keyword))
    assert second.status == 200 and second.json()["cached"] is True and second.headers["x-cache"] == "HIT"
    assert rank_api.metrics().total("seo_http_requests_total", route="/rank") == before_calls + 1
    refreshed = backend.api("GET", kw_path(keyword) + "?refresh=1")
    assert refreshed.status == 200 and refreshed.json()["cached"] is False
    assert pg_server.psql("SELECT count(*) FROM rank_history WHERE keyword = '%s'" % keyword, db=backend_db) == "2"
    assert int(redis_server.cmd("GET", "stats:lookups")) >= 3
    metrics = backend.metrics()
    assert metrics.total("seo_upstream_requests_total", upstream="rank-api", outcome="ok") >= 2
    assert metrics.total("seo_upstream_requests_total", upstream="postgres", outcome="ok") >= 2
    assert metrics.total("seo_upstream_requests_total", upstream="redis", outcome="ok") >= 4


def test_rank_lookup_adds_unknown_keyword(backend, pg_server, backend_db):
    assert backend.api("GET", kw_path("brand new keyword")).status == 200
    assert pg_server.psql("SELECT count(*) FROM keywords WHERE keyword = 'brand new keyword'", db=backend_db) == "1"
    listing = backend.api("GET", "/api/keywords").json()["keywords"]
    entry = [i for i in listing if i["keyword"] == "brand new keyword"][0]
    assert entry["rank"] == stub_rank("brand new keyword") and entry["checked_at"].endswith("Z")


def test_report_aggregates_real_rows(backend):
    backend.api("GET", kw_path("report keyword") + "?refresh=1")
    report = backend.api("GET", "/api/report")
    assert report.status == 200, report
    body = report.json()
    assert body["keywords_tracked"] >= 9
    assert body["rank_checks_last_hour"] >= 1
    assert body["lookups_total"] >= 1 and body["rank_api_calls_total"] >= 1
    assert 1 <= body["average_rank_last_hour"] <= 100
    assert body["top_keywords"] and all(1 <= item["rank"] <= 100 for item in body["top_keywords"])


def test_rank_api_refused_gives_503(spawn, pg_server, redis_server, backend_db):
    proc = spawn("backend-api", backend_env(pg_server, redis_server, "http://127.0.0.1:%d" % closed_port(),
                                            backend_db))
    resp = proc.api("GET", kw_path("refused keyword"))
    assert resp.status == 503, resp
    assert "rank api unavailable: connection refused" in resp.json()["error"]
    assert proc.wait_log("rank api unavailable: connection refused")
    assert proc.metrics().total("seo_upstream_requests_total", upstream="rank-api", outcome="refused") == 1


def test_rank_api_timeout_gives_504(spawn, pg_server, redis_server, backend_db):
    slow = spawn("rank-api", {"SEO_FAULT_LATENCY_MS": "1500"})
    proc = spawn("backend-api", backend_env(pg_server, redis_server, slow.url, backend_db,
                                            SEO_RANK_API_TIMEOUT_S="0.3"))
    resp = proc.api("GET", kw_path("slow keyword"))
    assert resp.status == 504, resp
    assert "rank api timeout" in resp.json()["error"]
    assert proc.wait_log("rank api timeout")
    assert proc.metrics().total("seo_upstream_requests_total", upstream="rank-api", outcome="timeout") == 1


def test_postgres_stopped_and_restarted(spawn, own_pg, redis_server, rank_api):
    db = new_db(own_pg)
    proc = spawn("backend-api", backend_env(own_pg, redis_server, rank_api.url, db))
    assert proc.get("/health").status == 200
    assert proc.api("GET", "/api/keywords").status == 200
    own_pg.stop()

    health = proc.get("/health")
    assert health.status == 503, health
    body = health.json()
    assert body["failing"] == ["postgres"] and body["checks"]["redis"] == "ok"
    assert "connection refused" in body["checks"]["postgres"]
    resp = proc.api("GET", "/api/keywords")
    assert resp.status == 503 and "postgres unavailable" in resp.json()["error"]
    assert resp.elapsed < 8, "a dead dependency must fail fast, not hang"
    errors = proc.errors("connection refused")
    assert any(r.get("dependency") == "postgres" for r in errors), proc.stdout()

    own_pg.start()
    wait_for(lambda: proc.get("/health").status == 200, 20, 0.3, "backend health after postgres restart")
    assert proc.api("GET", "/api/keywords").status == 200


def test_backend_starts_while_postgres_is_down_and_creates_schema_later(spawn, own_pg, redis_server, rank_api):
    db = new_db(own_pg)
    own_pg.stop()
    proc = spawn("backend-api", backend_env(own_pg, redis_server, rank_api.url, db))
    assert proc.get("/health").status == 503
    assert proc.get("/health").json()["schema_ready"] is False
    assert proc.api("GET", "/api/keywords").status == 503
    own_pg.start()
    wait_for(lambda: proc.api("GET", "/api/keywords").status == 200, 20, 0.3, "keywords after postgres start")
    assert own_pg.psql("SELECT count(*) FROM keywords", db=db) != "0"


def test_redis_stopped_and_restarted(spawn, pg_server, own_redis, rank_api, backend_db):
    proc = spawn("backend-api", backend_env(pg_server, own_redis, rank_api.url, backend_db))
    assert proc.api("GET", kw_path("redis keyword")).status == 200
    own_redis.stop()
    health = proc.get("/health")
    assert health.status == 503
    assert health.json()["failing"] == ["redis"]
    assert "connection refused" in health.json()["checks"]["redis"]
    resp = proc.api("GET", kw_path("redis keyword"))
    assert resp.status == 503 and "redis unavailable: connection refused" in resp.json()["error"]
    assert any(r.get("dependency") == "redis" for r in proc.errors("connection refused"))
    assert proc.api("GET", "/api/keywords").status == 200  # postgres-only route still works
    own_redis.start()
    wait_for(lambda: proc.get("/health").status == 200, 15, 0.2, "backend health after redis restart")
    assert proc.api("GET", kw_path("redis keyword")).status == 200


def test_redis_error_reply_gives_503(spawn, pg_server, own_redis, rank_api, backend_db):
    proc = spawn("backend-api", backend_env(pg_server, own_redis, rank_api.url, backend_db))
    own_redis.cmd("SET", "stats:lookups", "not-a-number")
    resp = proc.api("GET", kw_path("error reply"))
    assert resp.status == 503, resp
    assert "not an integer" in resp.json()["error"]
    assert proc.wait_log("redis: ERR value is not an integer")


def test_wrong_db_password(spawn, pg_server, redis_server, rank_api, backend_db):
    proc = spawn("backend-api", backend_env(pg_server, redis_server, rank_api.url, backend_db,
                                            password="wrong-password"))
    health = proc.get("/health")
    assert health.status == 503 and health.json()["failing"] == ["postgres"]
    assert "password authentication failed" in health.json()["checks"]["postgres"]
    assert proc.wait_log("password authentication failed")


def test_md5_user_with_password_file(spawn, pg_server, redis_server, rank_api, tmp_path):
    db = new_db(pg_server, owner="seo_md5")
    pwfile = tmp_path / "db-password"
    pwfile.write_text(PG_USERS["seo_md5"][0] + "\n")
    env = backend_env(pg_server, redis_server, rank_api.url, db, user="seo_md5", SEO_DB_PASSWORD_FILE=str(pwfile))
    env.pop("SEO_DB_PASSWORD")
    proc = spawn("backend-api", env)
    assert proc.get("/health").status == 200
    assert proc.api("POST", "/api/keywords", {"keyword": "md5 keyword"}).status == 201
    assert pg_server.psql("SELECT count(*) FROM keywords WHERE keyword = 'md5 keyword'", db=db) == "1"


def test_trust_and_cleartext_users(spawn, pg_server, redis_server, rank_api):
    for user in ("seo_trust", "seo_clear"):
        db = new_db(pg_server, owner=user)
        proc = spawn("backend-api", backend_env(pg_server, redis_server, rank_api.url, db, user=user))
        assert proc.get("/health").status == 200, proc.stdout()
        assert proc.api("GET", kw_path("auth %s" % user)).status == 200
        assert pg_server.psql("SELECT count(*) FROM rank_history", db=db) == "1"


def test_two_backends_share_one_schema(spawn, pg_server, redis_server, rank_api):
    db = new_db(pg_server)
    env = backend_env(pg_server, redis_server, rank_api.url, db)
    first, second = spawn("backend-api", env), spawn("backend-api", env)
    assert first.errors() == [] and second.errors() == []
    assert first.api("POST", "/api/keywords", {"keyword": "shared"}).status == 201
    assert second.api("POST", "/api/keywords", {"keyword": "shared"}).status == 200
    assert API_KEY not in first.stdout()


def test_keep_alive_stays_in_sync_after_early_errors(backend):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
    try:
        conn.request("POST", "/api/keywords", body=json.dumps({"keyword": "unread body"}),
                     headers={"X-Api-Key": "wrong", "Content-Type": "application/json"})
        first = conn.getresponse()
        first.read()
        assert first.status == 401
        conn.request("GET", "/api/keywords", headers={"X-Api-Key": API_KEY})
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read())["count"] >= 1
    finally:
        conn.close()
