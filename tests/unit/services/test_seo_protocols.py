"""The stdlib wire-protocol clients of seo_service.py against a real PostgreSQL and redis."""

import socket
import time

import pytest

from conftest import PG_USERS, closed_port


@pytest.mark.parametrize("user", ["seo", "seo_md5", "seo_clear", "seo_trust"])
def test_pg_auth_methods(seo, pg_server, user):
    password, method = PG_USERS[user]
    conn = seo.PgConnection(pg_server.host, pg_server.port, user, password or "not-needed", "postgres")
    try:
        assert conn.auth_method == method
        assert conn.query("SELECT current_user").rows == [(user,)]
    finally:
        conn.close()


def test_md5_user_really_has_an_md5_password(pg_server):
    stored = dict(line.split("|") for line in pg_server.psql(
        "SELECT rolname, left(rolpassword, 14) FROM pg_authid WHERE rolname IN ('seo', 'seo_md5')").splitlines())
    assert stored["seo"] == "SCRAM-SHA-256$"
    assert stored["seo_md5"].startswith("md5")


@pytest.mark.parametrize("user", ["seo", "seo_md5", "seo_clear"])
def test_pg_wrong_password_is_an_auth_error(seo, pg_server, user):
    with pytest.raises(seo.PgError) as info:
        seo.PgConnection(pg_server.host, pg_server.port, user, "wrong-password", "postgres")
    assert info.value.code == "28P01"
    assert "password authentication failed" in str(info.value)
    assert info.value.unavailable


def test_pg_unknown_database(seo, pg_server):
    with pytest.raises(seo.PgError) as info:
        seo.PgConnection(pg_server.host, pg_server.port, "seo", PG_USERS["seo"][0], "no_such_db")
    assert info.value.code == "3D000"


def test_pg_queries(seo, pg_server):
    conn = seo.PgConnection(pg_server.host, pg_server.port, "seo", PG_USERS["seo"][0], "postgres")
    try:
        result = conn.query("SELECT 1 AS one, NULL::text AS nothing, 'x' AS ex")
        assert result.columns == ["one", "nothing", "ex"]
        assert result.rows == [("1", None, "x")]
        assert result.tag == "SELECT 1"
        results = conn.query_all("SELECT 1; SELECT g FROM generate_series(1, 3) g")
        assert [r.rows for r in results] == [[("1",)], [("1",), ("2",), ("3",)]]
        with pytest.raises(seo.PgError) as info:
            conn.query("SELECT * FROM no_such_table")
        assert info.value.code == "42P01" and not info.value.unavailable
        assert conn.reusable  # error consumed up to ReadyForQuery
        assert conn.query("SELECT 2").rows == [("2",)]
        assert conn.query("").rows == []
    finally:
        conn.close()


@pytest.mark.parametrize("scs", ["on", "off"])
def test_pg_sql_literal_round_trip(seo, pg_server, scs):
    conn = seo.PgConnection(pg_server.host, pg_server.port, "seo", PG_USERS["seo"][0], "postgres")
    try:
        conn.query("SET standard_conforming_strings = %s" % scs)
        for text in ["plain", "O'Reilly", "back\\slash\\'", "caf\u00e9 \u2603", "x'); DROP TABLE t; --", "%s {}"]:
            assert conn.query("SELECT " + seo.sql_literal(text)).rows == [(text,)]
        with pytest.raises(ValueError):
            seo.sql_literal("nul\x00byte")
    finally:
        conn.close()


def test_pg_connect_refused_is_fast(seo):
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        seo.PgConnection("127.0.0.1", closed_port(), "seo", "x", "seo")
    assert time.monotonic() - started < 5
    outcome, reason = seo.describe_failure(ConnectionRefusedError(111, "Connection refused"))
    assert (outcome, reason) == ("refused", "connection refused")


def test_pg_server_that_never_answers_times_out(seo):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        with pytest.raises(TimeoutError):
            seo.PgConnection("127.0.0.1", listener.getsockname()[1], "seo", "x", "seo", connect_timeout=1.0,
                             timeout=0.5)
        assert seo.describe_failure(TimeoutError("timed out"))[0] == "timeout"
    finally:
        listener.close()


def test_redis_commands(seo, redis_server):
    conn = seo.RedisConnection(redis_server.host, redis_server.port)
    try:
        assert conn.command("PING") == "PONG"
        assert conn.command("SET", "t:proto:a", "caf\u00e9") == "OK"
        assert conn.command("GET", "t:proto:a") == "caf\u00e9".encode("utf-8")
        assert conn.command("GET", "t:proto:missing") is None
        assert conn.command("SETEX", "t:proto:b", 30, b"\x00\r\nbin") == "OK"
        assert conn.command("GET", "t:proto:b") == b"\x00\r\nbin"
        assert 0 < conn.command("TTL", "t:proto:b") <= 30
        conn.command("DEL", "t:proto:n")
        assert conn.command("INCR", "t:proto:n") == 1
        assert conn.command("INCR", "t:proto:n") == 2
        assert conn.command("MGET", "t:proto:n", "t:proto:missing") == [b"2", None]
        with pytest.raises(seo.RedisError) as info:
            conn.command("INCR", "t:proto:a")
        assert "not an integer" in str(info.value)
        with pytest.raises(seo.RedisError) as info:
            conn.command("NOSUCHCOMMAND")
        assert "unknown command" in str(info.value).lower()
        assert conn.command("PING") == "PONG"  # still in sync after error replies
    finally:
        conn.close()
    assert redis_server.cmd("GET", "t:proto:n") == b"2"


def test_pool_reuses_and_recovers_after_restart(seo, own_redis):
    made = []

    def factory():
        conn = seo.RedisConnection(own_redis.host, own_redis.port, 1.0, 1.0)
        made.append(conn)
        return conn

    pool = seo.Pool(factory)
    for _call in range(5):
        assert pool.run(lambda c: c.command("PING")) == "PONG"
    assert len(made) == 1
    own_redis.stop()
    with pytest.raises(ConnectionRefusedError):
        pool.run(lambda c: c.command("PING"))  # stale connection dropped, fresh one refused
    own_redis.start()
    assert pool.run(lambda c: c.command("PING")) == "PONG"
    pool.close_all()


def test_pg_pool_recovers_after_postgres_restart(seo, own_pg):
    pool = seo.Pool(lambda: seo.PgConnection(own_pg.host, own_pg.port, "seo", PG_USERS["seo"][0], "postgres"))
    assert pool.run(lambda c: c.query("SELECT 1").rows) == [("1",)]
    own_pg.stop()
    with pytest.raises((OSError, seo.PgError)):
        pool.run(lambda c: c.query("SELECT 1"))
    own_pg.start()
    assert pool.run(lambda c: c.query("SELECT 1").rows) == [("1",)]
    pool.close_all()
