"""The incident desk service's entries are witnessed evidence; the same words in a desk file
are self-reported. Post-mortem completeness comes from its sections."""

import json

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import desk_link
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.desk import postmortem_details

from .conftest import crit, desk_counts_rubric, fx, score

# The desk service's kinds for the scorer's (the inverse of incident_desk.SCORING_KIND).
DESK_KIND = {'acknowledge': ('acknowledge', {}), 'team_coordination': ('coordination', {}),
             'incident_log': ('log', {}), 'document_fix': ('fix', {}), 'postmortem': ('postmortem', {}),
             'status_update': ('status_update', {'audience': 'team'}),
             'user_notification': ('status_update', {'audience': 'users'}),
             'management_brief': ('status_update', {'audience': 'management'})}
# Criteria that only desk entries can earn (the others have audit-log steps too).
DESK_ONLY = ('process.communication', 'documentation.incident_record', 'documentation.recovery_steps')
COMMUNICATION = ('process.communication', 'process.coordination', 'process.documentation',
                 'documentation.incident_record', 'documentation.status_updates', 'documentation.recovery_steps')


def _witnessed(entries):
    """desk-full.json's entries as the desk service returns them."""
    records = []
    for index, entry in enumerate(entries):
        kind, extra = DESK_KIND[entry['kind']]
        records.append(dict(extra, id='r-%06d' % index, seq=index, kind=kind, scoring_kind=entry['kind'],
                            author=entry['author'], ts=entry['ts'], text=entry['text']))
    return records


@pytest.fixture(scope='module')
def desk_entries():
    with open(fx('desk-full.json')) as handle:
        return json.load(handle)


def test_witnessed_entries_earn_what_a_file_earns_only_when_it_counts(desk_entries):
    # The default rubric: a desk file earns nothing, the same entries witnessed by the desk do.
    file_only = score(desk='desk-full.json', rubric_file=None)
    witnessed = score(desk=None, rubric_file=None, witnessed_entries=_witnessed(desk_entries))
    counted_file = score(desk='desk-full.json', rubric_file=desk_counts_rubric())
    for cid in COMMUNICATION:
        # Same words, same times: the witnessed points are what the file would earn if it counted.
        assert crit(witnessed, cid)['points'] == crit(counted_file, cid)['points'], cid
        assert (crit(file_only, cid)['points'] or 0) <= crit(witnessed, cid)['points'], cid
    for cid in DESK_ONLY:
        assert crit(file_only, cid)['points'] in (0, 0.0, None), cid
        assert crit(witnessed, cid)['points'] > 0, cid
    by_source = witnessed['totals']['points_by_source']
    assert by_source['witnessed'] > 0
    assert by_source['self_reported'] == 0
    expected = sum(crit(witnessed, cid)['points'] for cid in COMMUNICATION)
    assert by_source['witnessed'] >= expected


def test_a_file_beside_the_desk_adds_nothing(desk_entries):
    witnessed = _witnessed([e for e in desk_entries if e['kind'] == 'acknowledge'])
    both = score(desk='desk-full.json', rubric_file=None, witnessed_entries=witnessed)
    alone = score(desk=None, rubric_file=None, witnessed_entries=witnessed)
    assert both['totals']['points'] == alone['totals']['points']
    assert both['totals']['points_by_source']['self_reported_withheld'] > 0
    sources = {s['name']: s for s in both['sources']}
    assert sources['incident_desk']['trust'] == 'witnessed'
    assert sources['desk']['trust'] == 'self_reported'


FOLLOWUP = {'review': ['Response effectiveness', 'Recovery time'], 'improvements': ['Process updates']}


@pytest.mark.parametrize('sections, complete, owned', [
    ({'review': {'Response effectiveness': 'ok', 'Recovery time': '9 min'}, 'improvements': {'Process updates': 'x'},
      'action_items': [{'title': 'Alert on OOMKilled', 'owner': 'trainee-1'}]}, True, True),
    ({'review': {'Response effectiveness': 'ok', 'Recovery time': ' '}, 'improvements': {'Process updates': 'x'},
      'action_items': [{'title': 'Alert on OOMKilled', 'owner': ''}]}, False, False),
    ({'review': {'Response effectiveness': 'ok', 'Recovery time': 'y'}, 'improvements': {}, 'action_items': []}, False, False),
])
def test_postmortem_completeness(sections, complete, owned):
    details = postmortem_details({'sections': sections, 'data': {'followup': FOLLOWUP}})
    assert details['sections_complete'] is complete
    assert details['action_items_owned'] is owned


def _postmortem(sections):
    return {'id': 'r-000100', 'kind': 'postmortem', 'scoring_kind': 'postmortem', 'author': 'trainee-2',
            'ts': '2026-11-22T17:50:00Z', 'text': 'post-mortem', 'sections': sections}


def test_postmortem_criterion_scores_its_sections():
    followup = {'review': ['Response effectiveness'], 'improvements': ['Process updates'],
                'action_items': ['Update procedures']}
    full = {'review': {'Response effectiveness': 'fast'}, 'improvements': {'Process updates': 'runbook'},
            'action_items': [{'title': 'Runbook for OOMKilled', 'owner': 'trainee-1'},
                             {'title': 'Alert on restarts', 'owner': 'trainee-2'}]}
    bare = {'review': {}, 'improvements': {}, 'action_items': []}
    scored = {}
    for name, sections in (('full', full), ('bare', bare)):
        records = desk_link.scoring_records([_postmortem(sections)], followup)
        scored[name] = crit(score(desk=None, rubric_file=None, witnessed_entries=records), 'documentation.postmortem')
    assert scored['full']['points'] == scored['full']['points_max']
    # written, nothing else: the step weights of the rubric (0.3 of the points)
    assert scored['bare']['points'] == pytest.approx(0.3 * scored['bare']['points_max'], abs=0.01)


def test_scoring_records_keep_the_latest_version_and_team_kinds_only():
    records = [
        {'id': 'a', 'kind': 'status_update', 'text': 'v1'},
        {'id': 'b', 'kind': 'status_update', 'text': 'v2', 'supersedes': 'a'},
        {'id': 'c', 'kind': 'alert'}, {'id': 'd', 'kind': 'mark', 'target': 'x'},
        {'id': 'e', 'kind': 'drill_opened'},
    ]
    assert [r['id'] for r in desk_link.scoring_records(records)] == ['b']


def test_desk_marks_latest_wins_and_bad_marks_are_warned():
    targets = [{'id': 'documentation.postmortem_quality', 'points': 2},
               {'id': 'outage.recovery.verify_service', 'points': None}]
    records = [
        {'id': 'm1', 'kind': 'mark', 'author': 'trainer', 'target': 'documentation.postmortem_quality', 'score': 1},
        {'id': 'm2', 'kind': 'mark', 'author': 'trainer', 'target': 'documentation.postmortem_quality', 'score': 2,
         'supersedes': 'm1', 'text': 'clear'},
        {'id': 'm3', 'kind': 'mark', 'author': 'trainer', 'target': 'outage.recovery.verify_service', 'pass': True},
        {'id': 'm4', 'kind': 'mark', 'author': 'trainer', 'target': 'no.such.criterion', 'score': 1},
        {'id': 'm5', 'kind': 'mark', 'author': 'trainer', 'target': 'outage.recovery.verify_service', 'score': 1},
    ]
    marks, warnings = desk_link.desk_marks(records[:4], targets)
    assert marks == {'documentation.postmortem_quality': {'by': 'trainer', 'note': 'clear', 'score': 2},
                     'outage.recovery.verify_service': {'by': 'trainer', 'note': None, 'pass': True}}
    assert len(warnings) == 1 and 'no.such.criterion' in warnings[0]
    dummy, warnings = desk_link.desk_marks(records[4:], targets)
    assert 'not between 0 and None' in warnings[0]
