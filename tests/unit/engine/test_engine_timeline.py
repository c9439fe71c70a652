"""The drill timeline records (docs/contracts.md section 3)."""

import json
import os
import stat
import time

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_timeline as tl
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import timeline as scoring_timeline

DRILL = {"drill_id": "seo-tool-20261122T173000Z", "scenario": "outage", "variant": "resources",
         "fault": "memory_limits", "namespace": "seo-tool"}


def test_record_has_the_contract_fields():
    before = time.time()
    record = tl.make_event("fault_injected", DRILL, {"target": "Deployment/backend-api"}, now=1795368601.1234)
    # Dated by its source: when the engine wrote it is kept beside it.
    recorded = record.pop("recorded_epoch")
    assert before - 0.01 <= recorded <= time.time() + 0.01
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


def test_event_files_are_written_private_before_the_event(tmp_path):
    art = tmp_path / "drill"
    result = tl.record_event({"event": "briefing_written", "drill": DRILL, "data": {}, "at": None,
                              "artifacts_dir": str(art), "artifacts_base": None,
                              "files": {"briefing.md": "# hidden fault\n", "briefing.json": "{}\n"}})
    assert sorted(os.path.basename(p) for p in result["files"]) == ["briefing.json", "briefing.md"]
    assert (art / "briefing.md").read_text() == "# hidden fault\n"
    assert stat.S_IMODE(os.stat(art).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(art / "briefing.md").st_mode) == 0o600
    assert [json.loads(line)["event"] for line in (art / "timeline.jsonl").read_text().splitlines()] == ["briefing_written"]
    # Written whole again, no partial file left.
    tl.record_event({"event": "briefing_written", "drill": DRILL, "data": {}, "at": None, "artifacts_dir": str(art),
                     "artifacts_base": None, "files": {"briefing.md": "short\n"}})
    assert (art / "briefing.md").read_text() == "short\n"
    assert sorted(os.listdir(art)) == ["briefing.json", "briefing.md", "timeline.jsonl"]


@pytest.mark.parametrize("name", ["../escape", "sub/dir.md", ".hidden", "timeline.jsonl", ""])
def test_event_file_names_stay_in_the_artifacts_dir(tmp_path, name):
    with pytest.raises(tl.TimelineError, match="files: "):
        tl.record_event({"event": "briefing_written", "drill": DRILL, "data": {}, "at": None,
                         "artifacts_dir": str(tmp_path / "drill"), "artifacts_base": None, "files": {name: "x"}})
    assert not (tmp_path / "drill" / "timeline.jsonl").exists()


def test_event_files_are_not_written_in_check_mode(tmp_path):
    result = tl.record_event({"event": "briefing_written", "drill": DRILL, "data": {}, "at": None,
                              "artifacts_dir": str(tmp_path / "drill"), "artifacts_base": None,
                              "files": {"briefing.md": "x"}}, check_mode=True)
    assert result["files"] == [] and not (tmp_path / "drill").exists()


def test_one_bad_file_name_writes_none_of_the_files(tmp_path):
    with pytest.raises(tl.TimelineError, match="'a/b'"):
        tl.record_event({"event": "briefing_written", "drill": DRILL, "data": {}, "at": None,
                         "artifacts_dir": str(tmp_path / "drill"), "artifacts_base": None,
                         "files": {"a.md": "x", "a/b": "y", "z.md": "z"}})
    assert not (tmp_path / "drill").exists()


def test_the_result_does_not_name_the_fault_the_file_keeps(tmp_path):
    """AWX keeps task results in the job's events for its viewers: the result leaves out
    which fault this is and what it changed; the timeline file has it all."""
    art = tmp_path / "drill"
    data = {"key": "outage/resources/memory_limits", "operations": ["replace Deployment/backend-api"]}
    result = tl.record_event({"event": "fault_injected", "drill": DRILL, "data": data, "at": None,
                              "artifacts_dir": str(art), "artifacts_base": None})
    shown = json.dumps(result)
    assert "memory_limits" not in shown and "backend-api" not in shown and "resources" not in shown
    assert result["record"]["event"] == "fault_injected" and result["record"]["drill_id"] == DRILL["drill_id"]
    written = json.loads((art / "timeline.jsonl").read_text().splitlines()[0])
    assert (written["fault"], written["variant"], written["data"]) == ("memory_limits", "resources", data)
