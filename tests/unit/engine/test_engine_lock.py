"""The drill Lease: one drill per namespace, refusals name the holder and since when."""

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import drill_lock as lock

NOW = 1795368600.0


def lease(holder, acquired=NOW - 120, renewed=None, duration=3600, info=None):
    info = info or {"controller-host": "trainer-laptop", "controller-pid": 4242,
                    "scenario": "outage", "variant": "resources"}
    body = lock.lease_body(holder, duration, info, now=acquired)
    if renewed is not None:
        body["spec"]["renewTime"] = lock._iso_micro(renewed)
    body["metadata"]["resourceVersion"] = "7"
    return body


def test_decide():
    assert lock.decide(None, "d1", NOW)[0] == "create"
    assert lock.decide(lease("d1"), "d1", NOW)[0] == "renew"
    assert lock.decide(lease("d0"), "d1", NOW)[0] == "refuse"
    stale = lease("d0", acquired=NOW - 7200)
    assert lock.decide(stale, "d1", NOW)[0] == "takeover"
    assert lock.decide(stale, "d1", NOW, state_armed=True)[0] == "refuse"


def test_refusal_names_holder_and_since_when():
    text = lock.refusal("seo-tool", lease("seo-tool-20261122T172800Z"), NOW)
    assert "namespace seo-tool already has an active drill" in text
    assert "held by seo-tool-20261122T172800Z (outage/resources, controller trainer-laptop pid 4242)" in text
    assert "since 2026-11-22T17:28:00.000000Z (120 s ago)" in text
    assert "ansible-playbook rollback.yml -e drill_namespace=seo-tool" in text


def test_acquire_create_renew_refuse_release(api):
    changed, action = lock.acquire(api, "seo-tool", "d1", 600, {"scenario": "outage"}, now=NOW)[:2]
    assert (changed, action) == (True, "create")
    first = api.get("Lease", lock.LEASE_NAME)
    assert first["spec"]["holderIdentity"] == "d1"
    assert first["metadata"]["annotations"]["opsdrill.io/scenario"] == "outage"
    changed, action = lock.acquire(api, "seo-tool", "d1", 600, now=NOW + 10)[:2]
    assert action == "renew"
    assert api.get("Lease", lock.LEASE_NAME)["spec"]["acquireTime"] == first["spec"]["acquireTime"]
    before = api.dump()
    with pytest.raises(lock.LockRefused, match="held by d1"):
        lock.acquire(api, "seo-tool", "d2", 600, now=NOW + 20)
    assert api.dump() == before, "a refused drill changes nothing"
    assert lock.release(api, "seo-tool", "d2") == (False, "d1")
    assert lock.release(api, "seo-tool", "d1") == (True, "d1")
    assert api.get_or_none("Lease", lock.LEASE_NAME) is None


def test_check_mode_writes_nothing(api):
    before = api.dump()
    changed, action, body = lock.acquire(api, "seo-tool", "d1", 600, check_mode=True, now=NOW)
    assert (changed, action, body["spec"]["holderIdentity"]) == (True, "create", "d1")
    assert api.dump() == before


def test_force_release(api):
    lock.acquire(api, "seo-tool", "d1", 600, now=NOW)
    assert lock.release(api, "seo-tool", None, force=True) == (True, "d1")
