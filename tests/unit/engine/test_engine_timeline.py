"""The drill timeline records (docs/contracts.md section 3)."""

import json
import os
import stat

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import drill_timeline as tl
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import timeline as scoring_timeline

DRILL = {"drill_id": "seo-tool-20261122T173000Z", "scenario": "outage", "variant": "resources",
         "fault": "memory_limits", "namespace": "seo-tool"}


def test_record_has_the_contract_fields():
    record = tl.make_event("fault_injected", DRILL, {"target": "Deployment/backend-api"}, now=1795368601.1234)
    assert record == {"schema": 1, "ts": "2026-11-22T17:30:01.123Z", "epoch": 1795368601.123,
                      "drill_id": "seo-tool-20261122T173000Z", "event": "fault_injected",
                      "scenario": "outage", "variant": "resources", "fault": "memory_limits",
                      "namespace": "seo-tool", "data": {"target": "Deployment/backend-api"}}


@pytest.mark.parametrize("event, data, message", [
    ("no_such_event", {}, "unknown event 'no_such_event'; events: drill_started"),
    ("steady_state_restored", {}, "needs data.by (one of team, rollback)"),
    ("steady_state_restored", {"by": "magic"}, "data.by 'magic' not allowed; allowed: team, rollback"),
    ("response_window_ended", {"reason": "bored"}, "allowed: recovered, timeout, interrupted"),
    ("drill_failed", {"phase": "inject"}, "needs data.error"),
    ("drill_finished", {}, "needs data.result"),
])
def test_bad_events_are_refused_naming_the_field(event, data, message):
    with pytest.raises(tl.TimelineError, match=None) as info:
        tl.make_event(event, DRILL, data)
    assert message in str(info.value)


def test_drill_id_is_checked():
    with pytest.raises(tl.TimelineError, match="drill_id must be"):
        tl.make_event("drill_started", dict(DRILL, drill_id="../etc"))


def test_append_writes_private_json_lines_the_scorer_reads(tmp_path):
    directory = tmp_path / "drills" / DRILL["drill_id"]
    for event, data in (("drill_started", {}), ("fault_injected", {}),
                        ("steady_state_restored", {"by": "rollback"}),
                        ("drill_finished", {"result": "rolled_back"})):
        path = tl.append(str(directory), tl.make_event(event, DRILL, data))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    lines = open(path).read().splitlines()
    assert [json.loads(line)["event"] for line in lines] == [
        "drill_started", "fault_injected", "steady_state_restored", "drill_finished"]
    timeline = scoring_timeline.load_timeline(path)
    assert timeline.drill_id == DRILL["drill_id"] and timeline.fault == "memory_limits"
    assert timeline.restored_by_rollback_at is not None and timeline.result == "rolled_back"
    assert tl.read(str(directory))[0]["event"] == "drill_started"


def test_drill_id_for():
    assert tl.drill_id_for("seo-tool", 1795368600) == "seo-tool-20261122T173000Z"
    assert tl.drill_id_for("seo-tool", 1795368600, "ab12") == "seo-tool-20261122T173000Z-ab12"
