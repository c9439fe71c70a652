"""Scoring recorded drills end to end (timeline + audit log + desk + catalog)."""

import json
import os

import jsonschema
import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import (
    SCORECARD_SCHEMA_VERSION, load_rubric, load_timeline, summarize)
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.timeutil import parse_ts

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog

from .conftest import CATALOG, REPO, check_item, crit, edited_timeline, fx, score

SCENARIOS = {
    'recovered': dict(),
    'no_recovery': dict(timeline='timeline-no-recovery.jsonl', audit='audit-rollback-only.log'),
    'rollback_only': dict(timeline='timeline-rollback-only.jsonl', audit='audit-rollback-only.log'),
    'no_alert': dict(timeline='timeline-no-alert.jsonl'),
    'two_trainees': dict(audit='audit-two-trainees.log', desk='desk-two-trainees.json'),
    'symptom_only': dict(timeline='timeline-error-spike-symptom.jsonl', audit='audit-symptom-only.log',
                         catalog=CATALOG),
    'nothing_but_timeline': dict(audit=None, desk=None, catalog=None),
    'marks': dict(trainer_marks_file=fx('marks-good.yml')),
}


def _seconds(a, b):
    return round((b - a).total_seconds(), 3)


@pytest.fixture(params=sorted(SCENARIOS))
def any_scorecard(request):
    return request.param, score(**SCENARIOS[request.param])


def test_scorecard_matches_schema(any_scorecard, scorecard_schema):
    dummy, sc = any_scorecard
    jsonschema.validate(sc, scorecard_schema)
    assert sc['schema_version'] == SCORECARD_SCHEMA_VERSION
    # and it survives a JSON round trip unchanged (no datetimes or sets left)
    assert json.loads(json.dumps(sc)) == sc


def test_every_awarded_point_cites_evidence(any_scorecard):
    name, sc = any_scorecard
    for c in sc['criteria']:
        if c['points']:
            assert c['evidence'], (name, c['id'])
            for cite in c['evidence']:
                assert cite['source'] and cite['ts'] and cite['summary'], cite
        if c['status'] == 'not_assessed':
            assert c['points'] is None and c['reason'], (name, c['id'])


def test_totals_only_count_assessed_criteria(any_scorecard):
    dummy, sc = any_scorecard
    assessed = [c for c in sc['criteria'] if c['status'] != 'not_assessed']
    assert sc['totals']['points'] == pytest.approx(sum(c['points'] for c in assessed))
    assert sc['totals']['points_assessed_max'] == pytest.approx(sum(c['points_max'] for c in assessed))
    assert sc['totals']['not_assessed'] == len(sc['criteria']) - len(assessed)
    for c in assessed:
        assert (c['status'] == 'pass') == (c['points'] >= c['pass_points'])


def test_recovered_by_team():
    sc = score()
    tl = load_timeline(fx('timeline-recovered.jsonl'))
    m = sc['metrics']
    assert m['time_to_detect']['seconds'] == _seconds(tl.injected_at, tl.alert_at)
    assert m['time_to_recover']['seconds'] == _seconds(tl.injected_at, tl.restored_by_team_at)
    assert m['time_to_recover']['recovered_by'] == 'team'
    assert m['rollback']['seconds'] == _seconds(tl.ts_of('rollback_started'), tl.ts_of('rollback_finished'))
    # first response: the first kubectl request after the alert (the desk file's entries
    # are self-reported: their times are claims)
    first = m['first_response']['first_action']
    assert first['source'] == 'audit' and m['first_response']['seconds'] == _seconds(tl.alert_at, parse_ts(first['ts']))
    # no silence, and a desk file's "acknowledge" is no acknowledgement
    assert m['time_to_acknowledge']['seconds'] is None and 'no acknowledgement' in m['time_to_acknowledge']['note']
    # this hand-written timeline has no fix_state: whether the cause is gone is not assessed
    assert sc['fix_assessment']['level'] == 'not_assessed' and 'fix state' in sc['fix_assessment']['note']
    assert crit(sc, 'technical.problem_solving')['status'] == 'not_assessed'
    assert crit(sc, 'technical.service_recovery')['points'] == 10
    assert 'not scaled' in crit(sc, 'technical.service_recovery')['reason']
    assert sc['totals']['result'] == 'pass'


def test_slower_recovery_earns_fewer_points(tmp_path):
    """Move the team's recovery later in the recorded timeline: the band drops."""
    def later_recovery(event):
        if event['event'] == 'steady_state_restored' and event['data'].get('by') == 'team':
            event['epoch'] += 20 * 60  # 8:30 -> 28:30
    sc = score(timeline=None, timeline_file=edited_timeline(tmp_path, later_recovery))
    rec = crit(sc, 'technical.service_recovery')
    bands = [c for c in load_rubric().criteria if c.id == 'technical.service_recovery'][0].params['bands']
    assert rec['points'] == pytest.approx(10 * bands[-1]['ratio'])
    assert sc['metrics']['time_to_recover']['within_target'] is False


def test_no_recovery_at_all():
    sc = score(**SCENARIOS['no_recovery'])
    m = sc['metrics']
    assert m['time_to_recover']['seconds'] is None
    assert m['time_to_recover']['recovered_by'] is None
    assert 'not restored' in m['time_to_recover']['note']
    rec = crit(sc, 'technical.service_recovery')
    assert rec['status'] == 'fail' and rec['points'] == 0  # assessed: a real zero, with its evidence
    assert any(e['action'].startswith('response_window_ended') for e in rec['evidence'])
    # rollout restart and pod delete: changes the catalog calls symptom-only; whether the
    # cause is gone needs the cluster's fix state, which this hand-written timeline lacks
    fix = sc['fix_assessment']
    assert fix['level'] == 'not_assessed'
    assert {e['action'] for e in fix['symptom_fixes']} == {'rollout_restart', 'delete_pod'}
    assert check_item(sc, 'outage.recovery.implement_fix')['status'] == 'done'
    assert sc['phases'][-1]['name'] == 'total' and sc['drill']['result'] == 'failed'
    # service recovery is required: good communication cannot make up for it
    assert sc['totals']['percent'] >= sc['totals']['pass_percent']
    assert sc['totals']['result'] == 'fail'
    assert sc['totals']['required_failed'] == ['technical.service_recovery']


def test_recovery_only_by_the_rollback(tmp_path):
    # the recorded actions of the recovered drill, minus every change: the team only looked
    kept = []
    with open(fx('audit-recovered.log')) as handle:
        for line in handle:
            if json.loads(line)['verb'] not in ('patch', 'update', 'create', 'delete'):
                kept.append(line)
    audit = tmp_path / 'audit.log'
    audit.write_text(''.join(kept))
    sc = score(timeline='timeline-rollback-only.jsonl', audit=None, audit_log=str(audit))
    m = sc['metrics']
    assert m['time_to_recover']['recovered_by'] == 'rollback'
    assert m['time_to_recover']['seconds'] is None
    assert 'rollback' in m['time_to_recover']['note']
    assert m['rollback']['seconds'] > 0
    rec = crit(sc, 'technical.service_recovery')
    assert rec['points'] == 0 and 'rollback' in rec['summary']
    ps = crit(sc, 'technical.problem_solving')
    # no trainee change at all: no fix, whatever the cluster's state
    assert sc['fix_assessment']['level'] == 'no_fix' and ps['points'] == 0
    assert 'rollback' in ps['summary']
    assert crit(sc, 'technical.log_analysis')['points'] == 7  # the investigation still counts


def test_alert_never_fired():
    sc = score(**SCENARIOS['no_alert'])
    tl = load_timeline(fx('timeline-no-alert.jsonl'))
    m = sc['metrics']
    assert m['time_to_detect']['seconds'] is None and 'never fired' in m['time_to_detect']['note']
    assert m['time_to_acknowledge']['seconds'] is None and 'never fired' in m['time_to_acknowledge']['note']
    assert m['time_to_recover']['seconds'] == _seconds(tl.injected_at, tl.restored_by_team_at)
    rt = crit(sc, 'process.response_time')
    assert rt['status'] != 'not_assessed'
    assert 'never fired' in rt['reason']
    # measured from the injection less the catalog's alert_within_s
    allowance = catalog.lookup('outage', 'resources', 'memory_limits')['alert_within_s']
    first_action = parse_ts('2026-11-22T17:32:50Z')  # desk acknowledgement
    expected = max(0.0, (first_action - tl.injected_at).total_seconds() - allowance)
    assert '%d:%02d' % divmod(int(round(expected)), 60) in rt['summary']
    # the missing alert shows up as a monitoring improvement in the phases
    assert [p for p in sc['phases'] if p['name'] == 'detection'][0]['seconds'] is None


def test_two_trainees():
    sc = score(**SCENARIOS['two_trainees'])
    names = [p['name'] for p in sc['participants']]
    assert names == ['trainee-2', 'trainee-1']  # ordered by first action
    assert 'trainer-anna' not in names
    people = dict((p['name'], p) for p in sc['participants'])
    assert people['trainee-2']['changes'] >= 1
    first = sc['metrics']['first_response']['first_action']
    assert first['actor'] == 'trainee-2' and first['action'] == 'list_pods'
    coord = crit(sc, 'process.coordination')
    steps = dict((s['id'], s) for s in coord['steps'])
    assert steps['responders']['status'] == 'met' and steps['responders']['count'] == 2
    # both people's evidence is cited in the criteria they contributed to
    assert 'technical.error_analysis' in people['trainee-1']['criteria']
    log = crit(sc, 'technical.log_analysis')
    assert {e['actor'] for e in log['evidence']} == {'trainee-1', 'trainee-2'}


def test_symptom_only_fix_does_not_earn_full_problem_solving_credit():
    sc = score(**SCENARIOS['symptom_only'])
    assert sc['drill']['scenario'] == 'error_spike'
    assert sc['metrics']['time_to_recover']['recovered_by'] == 'team'
    assert crit(sc, 'technical.service_recovery')['points'] > 0
    fix = sc['fix_assessment']
    assert [e['action'] for e in fix['symptom_fixes']] == ['rollout_restart']
    # error spike checklist and scenario-specific log analysis
    assert sc['checklist']['title'].startswith('Error spike')
    steps = dict((s['id'], s['status']) for s in crit(sc, 'technical.log_analysis')['steps'])
    assert steps == {'logs': 'met', 'verify_logs': 'met'}
    assert crit(sc, 'technical.service_recovery')['title'].startswith('Fix implementation')


def test_missing_sources_are_not_assessed_not_zero():
    sc = score(**SCENARIOS['nothing_but_timeline'])
    status = dict((c['id'], c['status']) for c in sc['criteria'])
    assert status['technical.service_recovery'] == 'pass'
    for cid in ('technical.error_analysis', 'technical.log_analysis', 'technical.tool_usage', 'technical.problem_solving',
                'process.communication', 'documentation.incident_record', 'documentation.status_updates',
                'documentation.postmortem', 'process.response_time'):
        assert status[cid] == 'not_assessed', cid
    # coordination: its only assessable step would be "responders" from audit/desk: none
    assert status['process.coordination'] == 'not_assessed'
    reasons = crit(sc, 'technical.problem_solving')['reason']
    assert 'audit log' in reasons and 'catalog entry' in reasons
    assert sc['totals']['points_assessed_max'] == crit(sc, 'technical.service_recovery')['points_max']
    assert sc['fix_assessment'] is None
    assert sc['totals']['result'] == 'incomplete'  # 10 of 100 points assessable: no overall verdict
    assert any('no overall result' in w for w in sc['warnings'])
    assert all(i['status'] == 'not_assessed' for p in sc['checklist']['phases'] for i in p['items'])
    sources = dict((s['name'], s) for s in sc['sources'])
    assert sources['audit']['available'] is False and sources['timeline']['available'] is True


def test_no_catalog_only_problem_solving_is_not_assessed():
    sc = score(catalog=None)
    ps = crit(sc, 'technical.problem_solving')
    assert ps['status'] == 'not_assessed' and 'catalog entry' in ps['reason']
    assert crit(sc, 'technical.log_analysis')['status'] == 'pass'
    assert check_item(sc, 'outage.investigation.identify_cause')['status'] == 'not_assessed'
    assert check_item(sc, 'outage.recovery.implement_fix')['status'] == 'done'


def test_without_desk_process_criteria_are_not_assessed():
    sc = score(desk=None)
    assert crit(sc, 'process.communication')['status'] == 'not_assessed'
    # response time still has the audit log
    assert crit(sc, 'process.response_time')['status'] == 'pass'
    # coordination: an acknowledgement can be an Alertmanager silence in the audit log, so
    # with the responders step it is assessable without a desk; nobody silenced: missed
    coord = crit(sc, 'process.coordination')
    steps = dict((s['id'], s['status']) for s in coord['steps'])
    assert steps == {'acknowledged': 'missed', 'coordinated': 'not_assessed', 'responders': 'partial'}, steps
    assert coord['status'] == 'fail'


def test_no_timeline_at_all(tmp_path):
    sc = score(timeline=None, audit=None, desk=None, catalog=None, artifacts_dir=str(tmp_path))
    assert sc['totals']['result'] == 'not_assessed'
    assert sc['totals']['percent'] is None
    assert all(c['status'] == 'not_assessed' for c in sc['criteria'])
    assert 'no timeline' in ' '.join(sc['warnings'])


def test_catalog_entry_from_drill_state(tmp_path):
    import shutil
    import yaml
    shutil.copy(fx('timeline-recovered.jsonl'), str(tmp_path / 'timeline.jsonl'))
    entry = catalog.lookup('outage', 'resources', 'memory_limits')
    (tmp_path / 'drill-state.json').write_text(json.dumps({'drill_id': 'x', 'catalog_entry': entry}))
    sc = score(timeline=None, catalog=None, artifacts_dir=str(tmp_path))
    assert sc['fix_assessment']['catalog_key'] == 'outage/resources/memory_limits'
    assert [s for s in sc['sources'] if s['name'] == 'catalog'][0]['label'].endswith('drill-state.json#catalog_entry')


def test_catalog_from_whole_faults_file(tmp_path):
    sc = score(catalog=None, catalog_entry_file=CATALOG)
    assert sc['fix_assessment']['catalog_key'] == 'outage/resources/memory_limits'
    assert [s for s in sc['sources'] if s['name'] == 'catalog'][0]['label'] == CATALOG


def test_bad_catalog_entry_names_field():
    from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import ScoringInputError
    with pytest.raises(ScoringInputError) as info:
        score(catalog=None, catalog_entry={'accepted_fixes': [{'verb': 'patch', 'colour': 'red'}]})
    assert info.value.field == 'accepted_fixes[0].colour'
    with pytest.raises(ScoringInputError) as info:
        score(catalog=None, catalog_entry={'accepted_fixes': []})
    assert info.value.field == 'accepted_fixes'


def test_summary_for_set_stats():
    sc = score()
    summary = summarize(sc, {'json': '/x/scorecard.json'})
    assert summary['time_to_recover_s'] == sc['metrics']['time_to_recover']['seconds']
    assert summary['criteria']['technical.service_recovery'] == {
        'status': 'pass', 'points': 10.0, 'points_max': 10.0}
    assert summary['reports']['json'] == '/x/scorecard.json'
    json.dumps(summary)


REAL_CATALOG = os.path.join(REPO, 'plugins', 'module_utils', 'catalog', 'faults.yml')


@pytest.mark.skipif(not os.path.isfile(REAL_CATALOG), reason='the fault catalog (faults.yml) is not in this tree')
def test_real_fault_catalog_entry_is_understood():
    """The collection's own faults.yml: the drill's entry is picked and its {target} rules match."""
    sc = score(catalog=None, catalog_entry_file=REAL_CATALOG)
    fix = sc['fix_assessment']
    assert fix['catalog_key'] == 'outage/resources/memory_limits'
    # its cause part, {target_ref} filled; not judged without the cluster's fix state
    assert [(p['part'], p['fixed']) for p in fix['parts']] == [('Deployment/backend-api', None)]
    sc2 = score(**dict(SCENARIOS['no_recovery'], catalog=None, catalog_entry_file=REAL_CATALOG))
    assert {e['action'] for e in sc2['fix_assessment']['symptom_fixes']} == {'rollout_restart', 'delete_pod'}


def test_target_override_from_the_timeline(tmp_path):
    """A fault aimed at another workload: {target} follows the fault_injected event."""
    def other_target(event):
        if event['event'] == 'fault_injected':
            event['data']['target'] = 'Deployment/worker'
    sc = score(timeline=None, timeline_file=edited_timeline(tmp_path, other_target))
    # the cause part follows the fault's target
    assert [p['part'] for p in sc['fix_assessment']['parts']] == ['Deployment/worker']


def test_previous_drill_in_the_same_namespace_is_not_this_drills(tmp_path):
    """The same namespace and audit log serve one drill after another: a rollout undo of an
    earlier drill (before drill_started) and requests after drill_finished are neither
    listed nor scored, nor the incident record's fix."""
    undo = [{'op': 'replace', 'path': '/spec/template', 'value': {'metadata': {}, 'spec': {'containers': []}}}]

    def request(verb, uri, ref, stamp, body=None):
        ev = {'kind': 'Event', 'apiVersion': 'audit.k8s.io/v1', 'level': 'Request' if body else 'Metadata',
              'auditID': 'x-' + stamp, 'stage': 'ResponseComplete', 'requestURI': uri, 'verb': verb,
              'user': {'username': 'trainee-1', 'groups': ['opsdrill:trainees', 'system:authenticated']},
              'objectRef': ref, 'responseStatus': {'code': 200}, 'requestReceivedTimestamp': stamp,
              'stageTimestamp': stamp}
        if body is not None:
            ev['requestObject'] = body
        return json.dumps(ev)

    deployment = {'resource': 'deployments', 'namespace': 'seo-tool', 'name': 'backend-api', 'apiGroup': 'apps'}
    before = [request('get', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deployment,
                      '2026-11-22T17:20:00.000000Z'),
              request('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deployment,
                      '2026-11-22T17:20:01.000000Z', undo)]
    after = [request('list', '/api/v1/namespaces/seo-tool/pods', {'resource': 'pods', 'namespace': 'seo-tool'},
                     '2026-11-22T17:45:00.000000Z')]
    with open(fx('audit-recovered.log')) as handle:
        text = '\n'.join(before) + '\n' + handle.read().rstrip('\n') + '\n' + '\n'.join(after) + '\n'
    plain = score()
    sc = score(audit=None, audit_text=text, audit_label='audit.log')
    started, finished = parse_ts(sc['drill']['started_at']), parse_ts(sc['drill']['finished_at'])
    assert all(started <= parse_ts(a['ts']) <= finished for a in sc['actions'])
    assert len(sc['actions']) == len(plain['actions'])
    assert all(started <= parse_ts(e['ts']) for e in sc['events'])
    # (compared without refs: the prepended lines shift the audit.log line numbers)
    assert sc['fix_assessment']['level'] == plain['fix_assessment']['level']
    for key in ('cause_fixes', 'symptom_fixes', 'unlisted_changes'):
        assert [(f['ts'], f['action']) for f in sc['fix_assessment'][key]] == [
            (f['ts'], f['action']) for f in plain['fix_assessment'][key]]
    audit = [s for s in sc['sources'] if s['name'] == 'audit'][0]
    assert '3 before or after the drill' in audit['note']
