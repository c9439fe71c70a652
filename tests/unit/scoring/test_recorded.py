"""The scorer replayed on drills recorded on the lab (scripts/record_scoring_fixtures.py).

Each directory under fixtures/recorded/ is one real drill of a scripted trainee: its
timeline, the audit log excerpt of the drill, the catalog entry and the touched object as
the recording test read it (before the drill, with the fault, after the trainee's
command) with that test's own verdict (``own.in_place``: the fault's paths still there,
by its own diff). The checks here read the raw audit log themselves; the scorer's answer
must agree with them and with the recorded verdict.
"""
import datetime
import json
import os

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import build_scorecard, load_rubric

from .conftest import RECORDED, crit

RUNS = sorted(d for d in os.listdir(RECORDED) if os.path.isdir(os.path.join(RECORDED, d))) \
    if os.path.isdir(RECORDED) else []
TRAINEE = 'trainee-1'


def load(run):
    base = os.path.join(RECORDED, run)
    with open(os.path.join(base, 'catalog-entry.json')) as handle:
        entry = json.load(handle)
    with open(os.path.join(base, 'objects.json')) as handle:
        objects = json.load(handle)
    return base, entry, objects


def replay(run, timeline=None, audit=True, **kw):
    base, entry, dummy = load(run)
    scorecard, dummy_rubric = build_scorecard(
        timeline_file=timeline or os.path.join(base, 'timeline.jsonl'),
        audit_log=os.path.join(base, 'audit.log') if audit else None,
        catalog_entry=entry, trainees=[TRAINEE], **kw)
    return scorecard


def epoch(text):
    text = text.replace('Z', '+00:00')
    head, dot, rest = text.partition('.')
    if dot:
        frac, sign, zone = rest.partition('+')
        text = '%s.%s+%s' % (head, frac[:6].ljust(6, '0'), zone)
    return datetime.datetime.fromisoformat(text).timestamp()


def trainee_requests(run):
    """The trainee's completed requests, read from the raw audit log here."""
    out = []
    with open(os.path.join(RECORDED, run, 'audit.log')) as handle:
        for line in handle:
            event = json.loads(line)
            if event.get('stage') == 'ResponseComplete' and (event.get('user') or {}).get('username') == TRAINEE:
                event['_epoch'] = epoch(event['requestReceivedTimestamp'])
                out.append(event)
    return out


def timeline_event(run, name, by=None):
    with open(os.path.join(RECORDED, run, 'timeline.jsonl')) as handle:
        for line in handle:
            event = json.loads(line)
            if event['event'] == name and (by is None or event['data'].get('by') == by):
                return event
    return None


def test_there_are_recorded_runs_of_four_faults_and_three_kinds():
    faults = set(r.rsplit('-', 1)[0] for r in RUNS)
    kinds = set(r.rsplit('-', 1)[1] for r in RUNS)
    assert len(faults) >= 4 and kinds == {'real', 'symptom', 'cosmetic'}, RUNS


@pytest.mark.parametrize('run', RUNS)
def test_the_recorded_catalog_entry_is_the_catalogs(run):
    dummy, entry, dummy_objects = load(run)
    scenario, variant, fault = entry['key'].split('/')
    current = catalog.lookup(scenario, variant, fault)
    assert json.loads(json.dumps(current)) == entry, (
        '%s was recorded with another catalog entry: run scripts/record_scoring_fixtures.py -k %s' % (run, fault))


@pytest.mark.parametrize('run', RUNS)
def test_the_verdict_agrees_with_the_recorded_cluster_reading(run):
    dummy, entry, objects = load(run)
    kind = run.rsplit('-', 1)[1]
    own = objects['own']
    assert own['changed'], 'the recording saw no change of %s by the fault' % objects['ref']
    sc = replay(run)
    fix = sc['fix_assessment']
    ps, rec = crit(sc, 'technical.problem_solving'), crit(sc, 'technical.service_recovery')
    assert fix['judged_by'] == 'cluster'
    assert fix['cause_fixed'] is (not own['in_place']), (fix['parts'], own['in_place'])
    requests = trainee_requests(run)
    # kubectl exec is a GET of pods/exec (websocket) that changes what runs in the pod
    writes = [r for r in requests if (r['verb'] in ('patch', 'update', 'create', 'delete')
                                      or (r.get('objectRef') or {}).get('subresource') == 'exec')
              and (r.get('responseStatus') or {}).get('code', 200) < 400]
    if kind == 'real':
        assert fix['level'] == 'cause_fixed_recovered'
        assert ps['points'] == ps['points_max'] and rec['points'] == rec['points_max']
        # every cause fix is one of the trainee's writes in the log, at its time
        for cited in fix['cause_fixes']:
            assert cited['actor'] == TRAINEE
            assert any(abs(r['_epoch'] - epoch(cited['ts'])) < 0.002 for r in writes), cited
        restored = timeline_event(run, 'steady_state_restored', by='team')
        assert restored is not None and restored['epoch'] >= min(r['_epoch'] for r in writes)
    elif kind == 'symptom':
        assert fix['level'] in ('symptom_only', 'symptom_only_recovered') and fix['cause_fixes'] == []
        assert 0 < ps['points'] < ps['points_max']
        assert rec['points'] <= rec['points_max'] / 2
        # polling, a restart or a flush, no desk, no trainer marks: no pass
        assert sc['totals']['result'] != 'pass'
    else:
        # kubectl annotate: a patch whose body changes metadata only
        annotate = [r for r in writes if r['verb'] == 'patch' and set(r.get('requestObject') or {}) == {'metadata'}]
        assert len(annotate) == 1, writes
        assert fix['level'] == 'no_fix' and ps['points'] == 0 and rec['points'] == 0
        assert fix['symptom_fixes'] == [] and fix['cause_fixes'] == []
        assert [abs(epoch(c['ts']) - annotate[0]['_epoch']) < 0.002 for c in fix['unlisted_changes']] == [True]


@pytest.mark.parametrize('run', [r for r in RUNS if r.endswith('-symptom')])
def test_polling_before_the_alert_is_no_response(run):
    sc = replay(run)
    alert = timeline_event(run, 'alert_firing')['epoch']
    polls = [r for r in trainee_requests(run) if r['_epoch'] < alert and r['verb'] == 'list'
             and (r.get('objectRef') or {}).get('resource') == 'pods']
    assert len(polls) >= 2, 'the recording polled the pods before the alert'
    first = sc['metrics']['first_response']
    assert first['polling_ignored'] >= 1
    assert first['first_action']['action'] != 'list_pods', first
    assert sc['metrics']['time_to_acknowledge']['seconds'] is None  # nobody acknowledged


@pytest.mark.parametrize('run', RUNS[:1])
def test_missing_evidence_is_not_assessed_never_zero(run, tmp_path):
    no_audit = replay(run, audit=False)
    assert no_audit['fix_assessment']['level'] == 'not_assessed'
    assert crit(no_audit, 'technical.problem_solving')['status'] == 'not_assessed'
    # a timeline without the cluster's fix state (a drill that failed before it was read)
    path = tmp_path / 'timeline.jsonl'
    with open(os.path.join(RECORDED, run, 'timeline.jsonl')) as handle:
        path.write_text(''.join(line for line in handle if '"fix_state"' not in line))
    no_state = replay(run, timeline=str(path))
    assert no_state['fix_assessment']['level'] == 'not_assessed'
    assert 'fix state' in no_state['fix_assessment']['note']


@pytest.mark.parametrize('run', [r for r in RUNS if r.endswith('-real')][:1])
def test_recovered_later_than_the_window_is_cause_fixed_not_recovered(run, tmp_path):
    path = tmp_path / 'timeline.jsonl'
    with open(os.path.join(RECORDED, run, 'timeline.jsonl')) as handle:
        path.write_text(''.join(line for line in handle
                                if not ('"steady_state_restored"' in line and '"team"' in line)))
    sc = replay(run, timeline=str(path))
    levels = [c for c in load_rubric().criteria if c.id == 'technical.problem_solving'][0].params['levels']
    assert sc['fix_assessment']['level'] == 'cause_fixed_not_recovered'
    assert crit(sc, 'technical.problem_solving')['points'] == pytest.approx(10 * levels['cause_fixed_not_recovered'])
    assert crit(sc, 'technical.service_recovery')['points'] == 0


@pytest.mark.parametrize('run', [r for r in RUNS if r.endswith('-real')][:1])
def test_a_self_reported_desk_file_earns_nothing_unless_the_rubric_allows(run, tmp_path):
    alert = timeline_event(run, 'alert_firing')['epoch']
    stamp = datetime.datetime.fromtimestamp(alert + 20, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    desk = [{'ts': stamp, 'author': TRAINEE, 'kind': kind, 'text': 'x'}
            for kind in ('acknowledge', 'status_update', 'user_notification', 'management_brief', 'incident_log',
                         'incident_log', 'incident_log', 'document_fix', 'team_coordination', 'postmortem')]
    plain = replay(run)
    with_desk = replay(run, desk_entries=desk)
    assert with_desk['totals']['points'] == plain['totals']['points']
    assert with_desk['totals']['points_by_source']['self_reported'] == 0
    withheld = with_desk['totals']['points_by_source']['self_reported_withheld']
    assert withheld > 0
    assert with_desk['metrics']['time_to_acknowledge']['seconds'] is None  # a claim is no acknowledgement
    rubric = load_rubric().data
    rubric['self_reported'] = {'max_points': 5}
    path = tmp_path / 'rubric.json'
    path.write_text(json.dumps(rubric))
    capped = replay(run, desk_entries=desk, rubric_file=str(path))
    assert capped['totals']['points_by_source']['self_reported'] == 5
    assert capped['totals']['points'] == pytest.approx(plain['totals']['points'] + 5)
    by = capped['totals']['points_by_source']
    assert by['machine'] + by['witnessed'] + by['trainer'] + by['self_reported'] == pytest.approx(
        capped['totals']['points'])
