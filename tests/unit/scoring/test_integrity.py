"""Reads of the drill's answer key (the drill state): the scorecard's integrity section and the reports."""

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import render_all, render_table, summarize

from .conftest import fx, score

# timeline-recovered.jsonl: fault injected 17:30:10.462, alert 17:32:25.051; trainee-1 acts from 17:32:57
TRAINEE = ('opsdrill:trainees', 'system:authenticated')
WARNING = ("trainee-1 read the drill's answer key (configmap opsdrill-drill-state) at T+0:42: "
           "trainer review required (no points deducted)")


def audit_event(verb, uri, ref, ts, user='trainee-1', groups=TRAINEE, code=200):
    """An audit.k8s.io/v1 Event at Metadata level, as the API server writes it."""
    return {'kind': 'Event', 'apiVersion': 'audit.k8s.io/v1', 'level': 'Metadata', 'auditID': 'state-%s-%s' % (user, ts),
            'stage': 'ResponseComplete', 'requestURI': uri, 'verb': verb,
            'user': {'username': user, 'groups': list(groups)}, 'sourceIPs': ['172.18.0.1'],
            'userAgent': 'kubectl/v1.34.1 (linux/amd64) kubernetes/93248f9', 'objectRef': ref,
            'responseStatus': {'metadata': {}, 'code': code},
            'requestReceivedTimestamp': ts + 'Z', 'stageTimestamp': ts + 'Z'}


def get_state(ts, resource='configmaps', **kw):
    ref = {'resource': resource, 'namespace': 'seo-tool', 'name': 'opsdrill-drill-state', 'apiVersion': 'v1'}
    return audit_event('get', '/api/v1/namespaces/seo-tool/%s/opsdrill-drill-state' % resource, ref, ts, **kw)


def recovered_log_with(*extra):
    with open(fx('audit-recovered.log'), 'r', encoding='utf-8') as handle:
        text = handle.read()
    return text + ''.join(json.dumps(ev) + '\n' for ev in extra)


def score_with(*extra):
    return score(audit=None, audit_text=recovered_log_with(*extra), audit_label='audit.log')


@pytest.fixture
def flagged():
    """trainee-1 reads the answer key 42 s after the injection; the cluster admin reads it too."""
    return score_with(get_state('2026-11-22T17:30:52.462'),
                      get_state('2026-11-22T17:31:00.000', user='kubernetes-admin', groups=('kubeadm:cluster-admins',)))


def test_read_is_a_warning_and_an_integrity_finding(flagged, scorecard_schema):
    jsonschema.validate(json.loads(json.dumps(flagged)), scorecard_schema)
    assert flagged['warnings'][0] == WARNING
    integrity = flagged['integrity']
    assert integrity['checked'] is True and integrity['review_required'] is True
    # the admin's read is not a trainee's: not listed
    assert [(f['actor'], f['kind'], f['namespace'], f['name'], f['requests'], f['shown']) for f in integrity['findings']] == [
        ('trainee-1', 'configmap', 'seo-tool', 'opsdrill-drill-state', 1, True)]
    assert integrity['findings'][0]['first_at'] == '2026-11-22T17:30:52.462Z'
    assert integrity['findings'][0]['first_offset_s'] == 42.0
    read, = integrity['drill_state_reads']
    assert (read['action'], read['verb'], read['ok'], read['code'], read['ref']) == ('read_drill_state', 'get', True, 200,
                                                                                     'audit.log:57')
    assert 'list' in integrity['note']  # the limitation is stated where the finding is


def test_summary_for_set_stats_carries_the_finding(flagged):
    summary = summarize(flagged)
    assert summary['integrity']['review_required'] is True
    assert summary['integrity']['findings'][0]['actor'] == 'trainee-1'
    assert 'drill_state_reads' not in summary['integrity']  # findings, not every request
    assert summary['warnings'][0] == WARNING
    json.dumps(summary)


def test_reading_the_answer_key_costs_and_earns_nothing(flagged):
    clean = score_with()
    # no deduction: the same points everywhere ...
    assert [(c['id'], c['points']) for c in flagged['criteria']] == [(c['id'], c['points']) for c in clean['criteria']]
    assert flagged['totals'] == clean['totals']
    # ... and no credit: the read (before the alert) is not the first action
    assert flagged['metrics']['time_to_acknowledge'] == clean['metrics']['time_to_acknowledge']
    assert flagged['metrics']['first_response'] == clean['metrics']['first_response']
    assert flagged['metrics']['first_response']['acted_before_alert'] is False
    person = [p for p in flagged['participants'] if p['name'] == 'trainee-1'][0]
    assert person['first_action_at'] == [p for p in clean['participants'] if p['name'] == 'trainee-1'][0]['first_action_at']


def test_a_read_alone_makes_no_responder():
    only_read = score_with(get_state('2026-11-22T17:33:00.000', user='trainee-2'))
    clean = score_with()
    coordination = [c for c in only_read['criteria'] if c['id'] == 'process.coordination'][0]
    assert coordination == [c for c in clean['criteria'] if c['id'] == 'process.coordination'][0]
    assert only_read['integrity']['findings'][0]['actor'] == 'trainee-2'


def test_repeated_reads_are_one_finding_and_refusals_say_so():
    watch_ref = {'resource': 'configmaps', 'namespace': 'seo-tool', 'name': 'opsdrill-drill-state', 'apiVersion': 'v1'}
    sc = score_with(
        get_state('2026-11-22T17:30:05.462'),  # before the injection, after the snapshot
        audit_event('watch', '/api/v1/namespaces/seo-tool/configmaps?fieldSelector=metadata.name%3Dopsdrill-drill-state'
                    '&watch=true', watch_ref, '2026-11-22T17:31:10.462'),
        get_state('2026-11-22T17:34:10.462', resource='secrets', user='trainee-2', code=403))
    assert sc['warnings'][:2] == [
        "trainee-1 read the drill's answer key (configmap opsdrill-drill-state) at T-0:05 (2 requests, the last at T+1:00):"
        " trainer review required (no points deducted)",
        "trainee-2 tried to read the drill's answer key (secret opsdrill-drill-state) at T+4:00 - refused, nothing shown:"
        " trainer review required (no points deducted)"]
    refused = sc['integrity']['findings'][1]
    assert (refused['requests'], refused['refused'], refused['shown']) == (1, 1, False)
    assert sc['integrity']['review_required'] is True
    assert "answer key was read by trainee-1, trainee-2 (refused)" in render_table(sc)


def test_clean_drill_and_drill_without_audit_log():
    clean = score_with()
    assert clean['integrity'] == dict(clean['integrity'], checked=True, review_required=False, findings=[],
                                      drill_state_reads=[])
    assert not any('answer key' in w for w in clean['warnings'])
    unseen = score(audit=None)
    assert (unseen['integrity']['checked'], unseen['integrity']['review_required']) == (False, False)
    assert 'no audit log' in unseen['integrity']['note']


def test_reports_show_the_finding(flagged):
    reports = render_all(flagged)
    html = reports['html']
    assert 'id="integrity"' in html and 'TRAINER REVIEW REQUIRED' in html
    assert html.index('id="integrity"') < html.index('<h2>Timings</h2>')  # first thing on the page
    assert 'trainee-1 read the drill&#x27;s answer key (configmap opsdrill-drill-state) at T+0:42' in html
    assert 'class="answer-key-mark"' in html  # marked in trainee-1's lane of the timeline chart
    record = reports['incident_record']
    assert '## Integrity: trainer review required' in record
    row = [line for line in record.splitlines() if line.startswith('| trainee-1 |')][0]
    assert 'T+0:42' in row and 'configmap seo-tool/opsdrill-drill-state' in row and row.endswith('| yes |')
    assert '**Trainer review required**' in record
    # the post-mortem is the team's blameless draft: the finding is for the trainer, not in it
    assert 'answer key' not in reports['postmortem']
    props = dict((p.get('name'), p.get('value')) for p in ET.fromstring(reports['junit']).iter('property'))
    assert props['trainer_review_required'] == 'true'
    for table in (render_table(flagged), render_table(summarize(flagged))):
        assert "TRAINER REVIEW REQUIRED: the drill's answer key was read by trainee-1" in table
        assert '! ' + WARNING in table


def test_reports_of_a_clean_drill_say_nothing_about_it():
    reports = render_all(score_with())
    assert 'id="integrity"' not in reports['html'] and 'REVIEW REQUIRED' not in reports['html']
    assert 'Integrity' not in reports['incident_record']
    props = dict((p.get('name'), p.get('value')) for p in ET.fromstring(reports['junit']).iter('property'))
    assert props['trainer_review_required'] == 'false'


def test_reports_of_a_scorecard_before_schema_1_1_still_render():
    old = score_with()
    del old['integrity']
    assert summarize(old)['integrity'] is None
    assert 'REVIEW' not in render_table(old)
    render_all(old)


def test_attempts_on_the_control_namespace_are_findings_that_validate(scorecard_schema):
    """A trainee's refused requests into the control namespace - delete the dead-man's Job, a
    token for its ServiceAccount, a list of its ConfigMaps - are flagged, with their own kind."""
    control = 'opsdrill-ctl-seo-tool'
    job = {'resource': 'jobs', 'namespace': control, 'name': 'opsdrill-deadman', 'apiGroup': 'batch', 'apiVersion': 'v1'}
    token = {'resource': 'serviceaccounts', 'subresource': 'token', 'namespace': control, 'name': 'opsdrill-deadman',
             'apiVersion': 'v1'}
    listing = {'resource': 'configmaps', 'namespace': control, 'apiVersion': 'v1'}
    card = score_with(
        audit_event('delete', '/apis/batch/v1/namespaces/%s/jobs/opsdrill-deadman' % control, job,
                    '2026-11-22T17:30:52.462', code=403),
        audit_event('create', '/api/v1/namespaces/%s/serviceaccounts/opsdrill-deadman/token' % control, token,
                    '2026-11-22T17:30:53.000', code=403),
        audit_event('list', '/api/v1/namespaces/%s/configmaps' % control, listing, '2026-11-22T17:30:54.000', code=403))
    jsonschema.validate(json.loads(json.dumps(card)), scorecard_schema)
    found = sorted((f['kind'], f['name'], f['shown']) for f in card['integrity']['findings'])
    assert found == [('configmap', '*', False), ('job', 'opsdrill-deadman', False),
                     ('serviceaccount', 'opsdrill-deadman', False)]
    assert any("tried to reach the drill's own objects (job opsdrill-deadman)" in w for w in card['warnings'])


def test_tampering_with_the_monitoring_is_a_finding_not_a_fix(scorecard_schema):
    # The headless Service Prometheus finds backend-api's pods by: without it, no metrics.
    ref = {'resource': 'services', 'namespace': 'seo-tool', 'name': 'backend-api-pods', 'apiVersion': 'v1'}
    event = audit_event('patch', '/api/v1/namespaces/seo-tool/services/backend-api-pods', ref,
                        '2026-11-22T17:30:52.462')
    event['level'] = 'Request'
    event['requestObject'] = {'spec': {'selector': {'app': 'nothing'}}}
    card = score_with(event)
    jsonschema.validate(json.loads(json.dumps(card)), scorecard_schema)
    found = [(f['what'], f['kind'], f['name'], f['shown']) for f in card['integrity']['findings']]
    assert found == [('monitoring', 'service', 'backend-api-pods', True)]
    assert any("trainee-1 changed the drill's monitoring (service backend-api-pods)" in w for w in card['warnings'])
    assert "reached for the drill itself" in render_table(card)
    assert not any('backend-api-pods' in (a.get('summary') or '') for a in card.get('actions') or []
                   if a.get('fix') in ('cause', 'symptom'))
