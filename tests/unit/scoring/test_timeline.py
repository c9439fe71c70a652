"""Timeline parsing, key moments and phases."""

import json

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import (
    ScoringInputError, load_timeline, parse_timeline_lines)
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.timeutil import (
    format_duration, parse_ts)

from .conftest import fx


def _line(event, ts, **data):
    return json.dumps({'schema': 1, 'ts': ts, 'drill_id': 'd1', 'event': event, 'scenario': 'outage',
                       'variant': 'resources', 'fault': 'memory_limits', 'namespace': 'seo-tool', 'data': data})


def test_recovered_timeline_key_moments():
    tl = load_timeline(fx('timeline-recovered.jsonl'))
    assert tl.drill_id == 'seo-tool-20261122T173000Z'
    assert (tl.scenario, tl.variant, tl.fault, tl.namespace) == ('outage', 'resources', 'memory_limits', 'seo-tool')
    assert tl.injected_at < tl.alert_at < tl.restored_by_team_at < tl.restored_by_rollback_at
    assert tl.window_end_reason == 'recovered'
    assert tl.result == 'recovered_by_team'
    # the response window ends with response_window_ended, not the rollback
    assert tl.response_end_at == tl.ts_of('response_window_ended')


def test_phases_have_durations_from_their_events():
    tl = load_timeline(fx('timeline-recovered.jsonl'))
    phases = dict((p['name'], p) for p in tl.phases())
    detect = phases['detection']
    expected = (tl.alert_at - tl.injected_at).total_seconds()
    assert detect['seconds'] == pytest.approx(expected, abs=0.001)
    assert phases['rollback']['seconds'] == pytest.approx(
        (tl.ts_of('rollback_finished') - tl.ts_of('rollback_started')).total_seconds(), abs=0.001)
    assert phases['recovery']['seconds'] == pytest.approx(
        (tl.restored_by_team_at - tl.injected_at).total_seconds(), abs=0.001)
    assert all(p['seconds'] is not None for p in phases.values()), phases


def test_missing_events_leave_phase_open_with_note():
    tl = load_timeline(fx('timeline-no-alert.jsonl'))
    phases = dict((p['name'], p) for p in tl.phases())
    assert phases['detection']['seconds'] is None
    assert 'alert_firing' in phases['detection']['note']
    assert tl.alert_at is None


def test_steady_state_without_by_is_inferred_from_rollback_order():
    lines = [
        _line('fault_injected', '2026-11-22T17:30:10Z'),
        _line('steady_state_restored', '2026-11-22T17:35:00Z'),
        _line('rollback_started', '2026-11-22T17:36:00Z'),
        _line('steady_state_restored', '2026-11-22T17:37:00Z'),
    ]
    tl = parse_timeline_lines(lines)
    assert tl.restored_by_team_at == parse_ts('2026-11-22T17:35:00Z')
    assert tl.restored_by_rollback_at == parse_ts('2026-11-22T17:37:00Z')
    # only a rollback restore -> not the team's
    tl2 = parse_timeline_lines([lines[0], lines[2], lines[3]])
    assert tl2.restored_by_team_at is None


def test_events_are_sorted_by_time_not_by_line():
    tl = parse_timeline_lines([
        _line('alert_firing', '2026-11-22T17:32:00Z'),
        _line('fault_injected', '2026-11-22T17:30:00Z'),
    ])
    assert [e.event for e in tl.events] == ['fault_injected', 'alert_firing']


def test_missing_file_is_an_empty_timeline(tmp_path):
    tl = load_timeline(str(tmp_path / 'nope.jsonl'))
    assert not tl.available
    assert tl.phases()[0]['seconds'] is None


@pytest.mark.parametrize('lines, field', [
    (['{"event": "drill_started", "ts": "2026-11-22T17:30:00Z"}', '{not json'], 'line 2'),
    (['{"ts": "2026-11-22T17:30:00Z"}'], 'line 1: event'),
    (['{"event": "x", "ts": "half past five"}'], 'line 1: ts'),
    (['{"event": "x"}'], 'line 1: ts'),
    (['{"event": "x", "ts": "2026-11-22T17:30:00Z", "data": [1]}'], 'line 1: data'),
])
def test_malformed_timeline_names_file_and_field(lines, field):
    with pytest.raises(ScoringInputError) as info:
        parse_timeline_lines(lines, path='drill/timeline.jsonl')
    assert info.value.path == 'drill/timeline.jsonl'
    assert info.value.field == field
    assert 'drill/timeline.jsonl' in str(info.value) and field in str(info.value)


def test_malformed_timeline_fixture():
    with pytest.raises(ScoringInputError) as info:
        load_timeline(fx('timeline-bad.jsonl'))
    assert info.value.path.endswith('timeline-bad.jsonl')
    assert info.value.field == 'line 2: epoch'


@pytest.mark.parametrize('text, seconds', [
    ('2026-11-22T17:30:01.123Z', 1795368601.123),
    ('2026-11-22T17:30:01.123456789Z', 1795368601.123456),
    ('2026-11-22T18:30:01+01:00', 1795368601.0),
    ('2026-11-22T17:30:01', 1795368601.0),
])
def test_parse_ts_variants(text, seconds):
    assert parse_ts(text).timestamp() == pytest.approx(seconds, abs=1e-6)


def test_format_duration():
    assert format_duration(None) == '-'
    assert format_duration(65.4) == '1:05'
    assert format_duration(3725) == '1:02:05'
    assert format_duration(-30) == '-0:30'
