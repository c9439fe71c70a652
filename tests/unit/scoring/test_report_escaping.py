"""Trainee text from the incident desk never reaches a report as markup: every Markdown report
escapes it, junit.xml stays well-formed, the HTML escapes it; postmortem.md carries the
team's own post-mortem from the desk."""

import json
import os
import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import desk_link
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import load_rubric, write_reports
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.markdown import md, md_block

from .conftest import score

SCRIPT = '<script>window.pwned=1</script>'
IMG = '<img src=x onerror=alert(1)>'
PIPE = 'a|b'
RAW = ('<script>window.pwned', '<img src=x')
SCRIPT_MD = '&lt;script&gt;window.pwned=1&lt;/script&gt;'
IMG_MD = '&lt;img src=x onerror=alert(1)&gt;'
FOLLOWUP = {'review': ['Response effectiveness', 'Recovery time'],
            'improvements': ['Process updates', 'Tool enhancements'],
            'action_items': ['Update procedures']}


def _record(seq, kind, scoring_kind, ts, text, author='trainee-1', **extra):
    return dict(extra, id='r-%06d' % seq, seq=seq, kind=kind, scoring_kind=scoring_kind, author=author, ts=ts,
                text=text)


def _records():
    evil = '%s %s %s' % (SCRIPT, IMG, PIPE)
    sections = {
        'review': {'Response effectiveness': 'fast %s' % SCRIPT, 'Recovery time': '# not a heading %s' % IMG},
        'improvements': {'Process updates': 'runbook %s' % PIPE, 'Tool <b>enhancements</b>': 'alert on OOMKilled'},
        'action_items': [{'title': 'Runbook %s' % SCRIPT, 'owner': 'trainee-1'},
                         {'title': 'Alert %s' % IMG, 'owner': 'trainee-2'},
                         {'title': 'Split %s' % PIPE, 'owner': 'lead %s' % IMG}],
    }
    records = [
        _record(1, 'acknowledge', 'acknowledge', '2026-11-22T17:32:50Z', 'ack ' + evil),
        _record(2, 'status_update', 'status_update', '2026-11-22T17:34:00Z', 'investigating ' + evil, audience='team'),
        _record(3, 'status_update', 'user_notification', '2026-11-22T17:35:00Z', 'users ' + evil, audience='users'),
        _record(4, 'log', 'incident_log', '2026-11-22T17:36:00Z', 'log ' + evil, author='trainee-2'),
        _record(5, 'coordination', 'team_coordination', '2026-11-22T17:37:00Z', 'who ' + evil),
        _record(6, 'fix', 'document_fix', '2026-11-22T17:40:00Z', 'fixed ' + evil, author='trainee-2'),
        _record(7, 'postmortem', 'postmortem', '2026-11-22T17:55:00Z', 'first draft, superseded', sections={}),
        _record(8, 'postmortem', 'postmortem', '2026-11-22T17:58:12.345Z',
                'Summary %s\n\n- not a list %s' % (SCRIPT, PIPE), author='trainee-2', sections=sections,
                supersedes='r-000007'),
    ]
    return desk_link.scoring_records(records, FOLLOWUP)


@pytest.fixture(scope='module')
def scorecard():
    return score(desk=None, rubric_file=None, witnessed_entries=_records())


@pytest.fixture(scope='module')
def written(scorecard, tmp_path_factory):
    out = tmp_path_factory.mktemp('reports')
    paths, changed = write_reports(scorecard, str(out), rubric=load_rubric())
    assert changed
    texts = {}
    for key, path in paths.items():
        with open(path, 'r', encoding='utf-8') as handle:
            texts[key] = handle.read()
    return paths, texts


def test_every_report_file_is_written(written):
    paths, texts = written
    assert set(texts) == {'json', 'junit', 'incident_record', 'postmortem', 'html'}
    assert all(os.path.getsize(p) for p in paths.values())


def test_no_report_but_the_json_data_holds_raw_markup(written):
    paths, texts = written
    for key, text in texts.items():
        if key == 'json':
            continue  # data, not markup: checked below
        for raw in RAW:
            assert raw not in text, (key, raw)
        assert '<b>enhancements' not in text, key


def test_markdown_reports_show_the_text_escaped(written):
    dummy, texts = written
    for key in ('incident_record', 'postmortem'):
        text = texts[key]
        assert SCRIPT_MD in text, key
        assert IMG_MD in text, key
        assert 'a\\|b' in text, key
    record = texts['incident_record']
    assert 'investigating %s %s a\\|b' % (SCRIPT_MD, IMG_MD) in record


def test_markdown_table_rows_keep_their_columns(written):
    dummy, texts = written
    for key in ('incident_record', 'postmortem'):
        table = None
        for line in texts[key].splitlines():
            if not line.startswith('|'):
                table = None
                continue
            cells = len(re.findall(r'(?<!\\)\|', line))
            if table is None:
                table = cells
            assert cells == table, (key, line)


def test_markdown_md_files_are_all_checked(written):
    paths, dummy = written
    directory = os.path.dirname(paths['postmortem'])
    md_files = [n for n in os.listdir(directory) if n.endswith('.md')]
    assert sorted(md_files) == ['incident-record.md', 'postmortem.md']


def test_junit_is_well_formed_and_keeps_the_text(written):
    paths, texts = written
    root = ET.parse(paths['junit']).getroot()
    assert root.tag == 'testsuites'
    shown = '\n'.join(el.text or '' for el in root.iter('system-out'))
    # Escaped in the file, the same characters once parsed.
    assert SCRIPT in shown and IMG in shown
    assert '&lt;script&gt;window.pwned' in texts['junit']


def test_html_escapes_the_text(written):
    dummy, texts = written
    assert '&lt;script&gt;window.pwned=1&lt;/script&gt;' in texts['html']
    assert '&lt;img src=x onerror=alert(1)&gt;' in texts['html']


def test_json_keeps_the_text_as_data_and_the_postmortem_details(written, scorecard_schema):
    paths, dummy = written
    with open(paths['json'], 'r', encoding='utf-8') as handle:
        data = json.load(handle)
    jsonschema.validate(data, scorecard_schema)
    pms = [e for e in data['events'] if e['source'] == 'incident_desk' and e['action'] == 'postmortem']
    assert [e['details']['record'] for e in pms] == ['r-000008']  # desk_link keeps the latest version
    latest = pms[-1]['details']
    assert latest['supersedes'] == 'r-000007'
    assert latest['text'].startswith('Summary ' + SCRIPT)
    assert latest['sections']['review']['Response effectiveness'] == 'fast ' + SCRIPT
    assert latest['sections']['action_items'][1] == {'title': 'Alert ' + IMG, 'owner': 'trainee-2'}
    # other events carry no details
    assert all('details' not in e for e in data['events'] if e['action'] != 'postmortem')


def test_postmortem_md_carries_the_teams_postmortem(written):
    dummy, texts = written
    text = texts['postmortem']
    lines = text.splitlines()
    start = lines.index("## The team's post-mortem (incident desk)")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith('## '))
    section = '\n'.join(lines[start:end])
    # the latest version, not the superseded draft
    assert 'first draft' not in text
    assert 'trainee-2' in section and '2026-11-22T17:58:12.345Z' in section and 'r-000008' in section
    assert 'Summary %s' % SCRIPT_MD in section
    assert '\\- not a list a\\|b' in section  # a paragraph does not become a list
    assert '### Review' in section and '### Improvements' in section and '### Action items' in section
    assert '#### Response effectiveness\n\nfast %s' % SCRIPT_MD in section
    assert '#### Recovery time\n\n\\# not a heading %s' % IMG_MD in section
    assert '#### Process updates\n\nrunbook a\\|b' in section
    assert '#### Tool &lt;b&gt;enhancements&lt;/b&gt;\n\nalert on OOMKilled' in section
    assert '- Runbook %s \u2014 owner: trainee-1' % SCRIPT_MD in section
    assert '- Alert %s \u2014 owner: trainee-2' % IMG_MD in section
    assert '- Split a\\|b \u2014 owner: lead %s' % IMG_MD in section


def test_postmortem_md_shows_the_version_no_other_supersedes():
    # Records as the desk lists them (both versions), not filtered by desk_link.
    records = [dict(r, data={'followup': FOLLOWUP}) if r['kind'] == 'postmortem' else r for r in _records()]
    first = _record(7, 'postmortem', 'postmortem', '2026-11-22T17:59:00Z', 'first draft, superseded',
                    data={'followup': FOLLOWUP}, sections={})
    sc = score(desk=None, rubric_file=None, witnessed_entries=records + [first])
    from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import render_all
    text = render_all(sc)['postmortem']
    assert 'first draft' not in text and 'Summary %s' % SCRIPT_MD in text


def test_postmortem_md_without_a_desk_postmortem_has_no_team_section():
    sc = score(desk=None, rubric_file=None, witnessed_entries=[r for r in _records() if r['kind'] != 'postmortem'])
    from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import render_all
    assert "The team's post-mortem" not in render_all(sc)['postmortem']


@pytest.mark.parametrize('text, expected', [
    (SCRIPT, SCRIPT_MD),
    ('a & b', 'a &amp; b'),
    ('a|b', 'a\\|b'),
    ('line\nbreak', 'line break'),
])
def test_md_helper(text, expected):
    assert md(text) == expected


@pytest.mark.parametrize('text, expected', [
    ('# title', '\\# title'),
    ('- item', '\\- item'),
    ('12. item', '12\\. item'),
    ('2026 was fine', '2026 was fine'),
    ('one\n\n\ntwo <i>', 'one\n\ntwo &lt;i&gt;'),
])
def test_md_block_helper(text, expected):
    assert md_block(text) == expected
