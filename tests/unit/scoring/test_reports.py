"""Report files: scorecard.json, junit.xml, incident-record.md, postmortem.md, scorecard.html."""

import json
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import jsonschema
import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import (
    REPORT_FILES, build_scorecard, load_rubric, render_all, write_reports)

from .conftest import RECORDED, crit, edited_timeline, fx, score

EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)> | `rm -rf` _x_'


@pytest.fixture
def two_trainee_reports(tmp_path):
    sc = score(audit='audit-two-trainees.log', desk='desk-two-trainees.json')
    paths, changed = write_reports(sc, str(tmp_path), rubric=load_rubric())
    return sc, paths, changed


def test_all_reports_written(two_trainee_reports, tmp_path, scorecard_schema):
    sc, paths, changed = two_trainee_reports
    assert changed
    assert set(paths) == set(REPORT_FILES)
    for key, path in paths.items():
        assert os.path.dirname(path) == str(tmp_path)
        assert os.path.getsize(path) > 200, key
    with open(paths['json']) as handle:
        on_disk = json.load(handle)
    jsonschema.validate(on_disk, scorecard_schema)
    assert on_disk == json.loads(json.dumps(sc))


def test_rewrite_same_scorecard_is_unchanged_and_check_mode_writes_nothing(tmp_path):
    sc = score()
    write_reports(sc, str(tmp_path))
    dummy, changed = write_reports(sc, str(tmp_path))
    assert changed is False
    other = tmp_path / 'other'
    paths, changed = write_reports(sc, str(other), check_mode=True)
    assert changed is True and not other.exists()


def test_junit_one_testcase_per_criterion(two_trainee_reports):
    sc, paths, dummy = two_trainee_reports
    root = ET.parse(paths['junit']).getroot()
    assert root.tag == 'testsuites'
    suites = root.findall('testsuite')
    crit_suite = suites[0]
    cases = crit_suite.findall('testcase')
    assert [c.get('name').split(':')[0] for c in cases] == [c['id'] for c in sc['criteria']]
    assert int(crit_suite.get('tests')) == len(sc['criteria'])
    by_id = dict((c.get('name').split(':')[0], c) for c in cases)
    for c in sc['criteria']:
        case = by_id[c['id']]
        assert (case.find('failure') is not None) == (c['status'] == 'fail'), c['id']
        assert (case.find('skipped') is not None) == (c['status'] == 'not_assessed'), c['id']
    assert int(crit_suite.get('failures')) == len([c for c in sc['criteria'] if c['status'] == 'fail'])
    # expected actions in a second suite
    items = [i for p in sc['checklist']['phases'] for i in p['items']]
    assert len(suites[1].findall('testcase')) == len(items)
    props = dict((p.get('name'), p.get('value')) for p in crit_suite.find('properties'))
    assert props['drill_id'] == sc['drill']['drill_id']
    assert float(props['time_to_recover_s']) == sc['metrics']['time_to_recover']['seconds']


def test_junit_not_assessed_is_skipped_with_reason(tmp_path):
    sc = score(desk=None)
    paths, dummy = write_reports(sc, str(tmp_path), formats=['junit'])
    assert set(paths) == {'junit'}
    root = ET.parse(paths['junit']).getroot()
    case = [c for c in root.iter('testcase') if c.get('name').startswith('process.communication:')][0]
    skipped = case.find('skipped')
    assert skipped is not None and 'incident desk' in skipped.get('message')


def recorded(run):
    """A drill recorded on the lab (fixtures/recorded, scripts/record_scoring_fixtures.py)."""
    base = os.path.join(RECORDED, run)
    with open(os.path.join(base, 'catalog-entry.json')) as handle:
        entry = json.load(handle)
    return score(timeline=None, audit=None, desk=None, catalog=None, timeline_file=os.path.join(base, 'timeline.jsonl'),
                 audit_log=os.path.join(base, 'audit.log'), catalog_entry=entry, trainees=['trainee-1'])


def test_junit_below_threshold_is_failure(tmp_path):
    sc = recorded('logic_errors-symptom')  # redis-cli FLUSHDB alone: the release stays
    xml = render_all(sc)['junit']
    root = ET.fromstring(xml.split('\n', 1)[1])
    case = [c for c in root.iter('testcase') if c.get('name').startswith('technical.problem_solving:')][0]
    failure = case.find('failure')
    ps = crit(sc, 'technical.problem_solving')
    assert failure is not None
    assert '%g/%g' % (ps['points'], ps['points_max']) in failure.get('message')
    assert 'did not remove the cause' in failure.text and 'still in place' in failure.text


def test_incident_record_fills_the_timeline(two_trainee_reports):
    sc, paths, dummy = two_trainee_reports
    with open(paths['incident_record']) as handle:
        text = handle.read()
    moments = re.search(r'## Key moments\n(.*?)\n## ', text, re.S).group(1)
    for label in ('Fault injected', 'Alert firing', 'First action', 'First status update', 'Fix',
                  'Recovered by the team', 'Rollback started', 'Rollback finished'):
        row = [l for l in moments.splitlines() if l.startswith('| %s |' % label)]
        assert row and 'not recorded' not in row[0], label
    fix_row = [l for l in moments.splitlines() if l.startswith('| Fix |')][0]
    assert 'rollout undo' in fix_row and 'trainee-2' in fix_row
    assert sc['drill']['drill_id'] in text
    # markup from the desk is neutralised
    assert '<b>' not in text and '&lt;b&gt;' in text


def test_key_moments_are_in_time_order(tmp_path):
    """A first action before the alert is listed before it (it was listed after)."""
    def later_alert(event):
        if event['event'] == 'alert_firing':
            event['epoch'] += 120  # the alert fires after the team's first requests
    sc = score(timeline=None, timeline_file=edited_timeline(tmp_path, later_alert))
    text = render_all(sc)['incident_record']
    moments = re.search(r'## Key moments\n(.*?)\n## ', text, re.S).group(1)
    times = [row.split('|')[2].strip() for row in moments.splitlines()[2:] if 'not recorded' not in row]
    assert len(times) >= 5 and times == sorted(times), moments
    labels = [row.split('|')[1].strip() for row in moments.splitlines()[2:]]
    assert labels.index('First action') < labels.index('Alert firing'), labels


def test_incident_record_without_recovery_says_so():
    sc = score(timeline='timeline-rollback-only.jsonl', audit='audit-rollback-only.log')
    text = render_all(sc)['incident_record']
    row = [l for l in text.splitlines() if l.startswith('| Recovered by the team |')][0]
    assert 'not recorded' in row
    assert [l for l in text.splitlines() if l.startswith('| Restored by rollback |')][0].count('not recorded') == 0


def test_postmortem_has_seed_follow_up_sections():
    rubric = load_rubric()
    for sc, scenario in ((score(), 'outage'), (recorded('logic_errors-symptom'), 'error_spike')):
        text = render_all(sc, rubric)['postmortem']
        assert text.index('## Review') < text.index('## Improvements') < text.index('## Action Items')
        follow = rubric.followup[scenario]
        for title in follow['review'] + follow['improvements']:
            assert '### %s' % title in text, title
        for index, title in enumerate(follow['action_items'], 1):
            assert '%d. [ ] %s' % (index, title) in text
    # the symptom-only drill gets a training suggestion
    assert 'hid the symptom only' in text


def test_postmortem_mentions_root_cause_and_missing_alert():
    sc = score(timeline='timeline-no-alert.jsonl')
    text = render_all(sc, load_rubric())['postmortem']
    assert 'working set' in text  # catalog root_cause
    assert 'alert never fired' in text


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.scripts = 0
        self.external = []
        self.texts = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == 'script':
            self.scripts += 1
        for key in ('src', 'href'):
            if attrs.get(key):
                self.external.append(attrs[key])
        if any(k.startswith('on') for k in attrs):
            self.external.append('event handler on %s' % tag)

    def handle_data(self, data):
        self.texts.append(data)


def test_html_is_self_contained_and_escapes_user_text():
    entries = [{'ts': '2026-11-22T17:33:00Z', 'author': 'trainee-1<script>', 'kind': 'status_update', 'text': EVIL},
               {'ts': '2026-11-22T17:34:00Z', 'author': 'trainee-1', 'kind': 'incident_log', 'text': EVIL}]
    sc = score(desk=None, desk_entries=entries,
               trainer_marks={'documentation.postmortem': {'pass': False, 'note': '</td><script>x()</script>'}})
    html = render_all(sc)['html']
    parser = _Collector()
    parser.feed(html)
    assert parser.scripts == 0
    assert parser.external == []
    assert 'svg' in parser.tags and 'style' in parser.tags
    assert EVIL not in html and '&lt;script&gt;' in html
    assert any('<script>alert("x")</script>' in t for t in parser.texts)  # shown as text
    for c in sc['criteria']:
        assert 'id="criterion-%s"' % c['id'] in html
    assert 'url(' not in html and '@import' not in html


def test_markdown_escapes_user_text():
    entries = [{'ts': '2026-11-22T17:33:00Z', 'author': 'a|b', 'kind': 'status_update', 'text': 'x | y <i>z</i>\nnext'}]
    sc = score(desk=None, desk_entries=entries)
    text = render_all(sc)['incident_record']
    row = [l for l in text.splitlines() if 'status update' in l and l.startswith('| 17:33')][0]
    assert row.count(' | ') == 4  # the pipes inside the text do not add columns
    assert '<i>' not in text


def test_callback_free_path_scores_from_artifacts_dir(tmp_path):
    import shutil
    shutil.copy(fx('timeline-recovered.jsonl'), str(tmp_path / 'timeline.jsonl'))
    sc, rubric = build_scorecard(artifacts_dir=str(tmp_path), audit_log=fx('audit-recovered.log'))
    paths, dummy = write_reports(sc, str(tmp_path), rubric=rubric)
    assert os.path.isfile(paths['html'])
    assert sc['drill']['timeline_file'] == str(tmp_path / 'timeline.jsonl')
