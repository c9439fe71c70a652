"""Kubernetes audit log: trainee filtering and action classification."""

import json

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import AuditLogSource, ScoringInputError
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import audit
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.audit import (
    DRILL_STATE_PREFIX, parse_selector, workload_of_pod)
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.timeutil import parse_ts

from .conftest import fx

UA = 'kubectl/v1.34.1 (linux/amd64) kubernetes/93248f9'
_counter = [0]


def event(verb, uri, ref=None, user='trainee-1', groups=('opsdrill:trainees', 'system:authenticated'),
          stage='ResponseComplete', code=200, level='Metadata', request=None, second=0):
    _counter[0] += 1
    ev = {'kind': 'Event', 'apiVersion': 'audit.k8s.io/v1', 'level': level, 'auditID': 'id-%d' % _counter[0],
          'stage': stage, 'requestURI': uri, 'verb': verb, 'user': {'username': user, 'groups': list(groups)},
          'sourceIPs': ['172.18.0.1'], 'userAgent': UA,
          'requestReceivedTimestamp': '2026-11-22T17:35:%02d.000100Z' % second,
          'stageTimestamp': '2026-11-22T17:35:%02d.010100Z' % second}
    if ref is not None:
        ev['objectRef'] = ref
    if stage != 'RequestReceived':
        ev['responseStatus'] = {'metadata': {}, 'code': code}
    if request is not None:
        ev['requestObject'] = request
    return ev


def classify(*events, **kw):
    text = '\n'.join(json.dumps(e) for e in events) + '\n'
    source = AuditLogSource(text=text, label='audit.log', **kw)
    return source.collect()


def pods(name=None, sub=None, ns='seo-tool'):
    ref = {'resource': 'pods', 'namespace': ns, 'apiVersion': 'v1'}
    if name:
        ref['name'] = name
    if sub:
        ref['subresource'] = sub
    return ref


def deploy(name='backend-api', sub=None):
    ref = {'resource': 'deployments', 'namespace': 'seo-tool', 'name': name, 'apiGroup': 'apps', 'apiVersion': 'v1'}
    if sub:
        ref['subresource'] = sub
    return ref


@pytest.mark.parametrize('ev, action', [
    (event('list', '/api/v1/namespaces/seo-tool/pods?limit=500', pods()), 'list_pods'),
    (event('list', '/api/v1/namespaces/seo-tool/pods?labelSelector=tier%3Dfrontend&limit=500', pods()), 'check_dependencies'),
    (event('list', '/api/v1/namespaces/seo-tool/pods?labelSelector=tier+in+%28worker%2Cdata%29', pods()), 'check_dependencies'),
    (event('get', '/api/v1/namespaces/seo-tool/pods/backend-api-6f7d9c8b5d-x2k9p', pods('backend-api-6f7d9c8b5d-x2k9p')), 'get_pod'),
    (event('list', '/api/v1/namespaces/seo-tool/events?limit=500', {'resource': 'events', 'namespace': 'seo-tool'}), 'get_events'),
    (event('get', '/api/v1/namespaces/seo-tool/pods/p-1/log?container=backend-api', pods('p-1', 'log')), 'logs'),
    (event('list', '/apis/metrics.k8s.io/v1beta1/namespaces/seo-tool/pods',
           {'resource': 'pods', 'namespace': 'seo-tool', 'apiGroup': 'metrics.k8s.io'}), 'view_metrics'),
    (event('get', '/api/v1/namespaces/seo-tool/services/http:api-gateway:80/proxy/metrics',
           {'resource': 'services', 'namespace': 'seo-tool', 'name': 'http:api-gateway:80', 'subresource': 'proxy'}), 'view_metrics'),
    (event('get', '/api/v1/namespaces/seo-tool/services/http:api-gateway:80/proxy/health',
           {'resource': 'services', 'namespace': 'seo-tool', 'name': 'http:api-gateway:80', 'subresource': 'proxy'}), 'test_endpoint'),
    (event('get', '/api/v1/namespaces/seo-tool/pods/p-1/portforward', pods('p-1', 'portforward'), code=101), 'port_forward'),
    (event('list', '/apis/apps/v1/namespaces/seo-tool/replicasets?labelSelector=app%3Dbackend-api',
           {'resource': 'replicasets', 'namespace': 'seo-tool', 'apiGroup': 'apps'}), 'inspect_revisions'),
    (event('get', '/api/v1/namespaces/seo-tool/configmaps/seo-service-code',
           {'resource': 'configmaps', 'namespace': 'seo-tool', 'name': 'seo-service-code'}), 'inspect_config'),
    (event('patch', '/api/v1/namespaces/seo-tool/configmaps/x', {'resource': 'configmaps', 'namespace': 'seo-tool', 'name': 'x'},
           level='Request', request={'data': {'SEO_ROUTES': 'rank,keywords,report'}}), 'edit_configmap'),
    (event('update', '/api/v1/namespaces/seo-tool/secrets/backend-api-credentials',
           {'resource': 'secrets', 'namespace': 'seo-tool', 'name': 'backend-api-credentials'}), 'edit_secret'),
    (event('delete', '/api/v1/namespaces/seo-tool/pods/p-1', pods('p-1')), 'delete_pod'),
    (event('get', '/api/v1/namespaces/seo-tool/endpoints/backend-api',
           {'resource': 'endpoints', 'namespace': 'seo-tool', 'name': 'backend-api'}), 'check_endpoints'),
    (event('get', '/api/v1/namespaces', {'resource': 'namespaces'}), 'inspect_other'),
])
def test_classification(ev, action):
    items = classify(ev)
    assert [i.action for i in items] == [action]
    assert items[0].actor == 'trainee-1'
    assert items[0].source == 'audit'
    assert items[0].ref == 'audit.log:1'


def test_logs_previous_flag_and_workload():
    items = classify(event('get', '/api/v1/namespaces/seo-tool/pods/backend-api-6f7d9c8b5d-x2k9p/log?container=backend-api&previous=true',
                           pods('backend-api-6f7d9c8b5d-x2k9p', 'log')))
    assert items[0].details['previous'] is True
    assert items[0].details['workload'] == 'backend-api'
    assert '--previous' in items[0].summary


def test_rollout_restart_recognised_by_request_object():
    body = {'spec': {'template': {'metadata': {'annotations': {'kubectl.kubernetes.io/restartedAt': '2026-11-22T17:35:00Z'}}}}}
    items = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api?fieldManager=kubectl-rollout',
                           deploy(), level='Request', request=body))
    assert items[0].action == 'rollout_restart'
    assert items[0].mutating


def test_patch_that_also_changes_the_template_is_an_edit_not_a_restart():
    body = {'spec': {'template': {'metadata': {'annotations': {'kubectl.kubernetes.io/restartedAt': 'x'}},
                                  'spec': {'containers': [{'name': 'backend-api', 'resources': {'limits': {'memory': '256Mi'}}}]}}}}
    items = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(),
                           level='Request', request=body))
    assert items[0].action == 'edit_deployment'
    assert 'spec.template.spec.containers[backend-api].resources.limits.memory' in items[0].details['changed']


def test_rollout_undo_json_patch():
    body = [{'op': 'replace', 'path': '/spec/template', 'value': {'metadata': {}, 'spec': {'containers': []}}},
            {'op': 'replace', 'path': '/metadata/annotations', 'value': {'deployment.kubernetes.io/revision': '1'}}]
    items = classify(
        event('get', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), second=1),
        event('list', '/apis/apps/v1/namespaces/seo-tool/replicasets?labelSelector=app%3Dbackend-api',
              {'resource': 'replicasets', 'namespace': 'seo-tool', 'apiGroup': 'apps'}, second=1),
        event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), level='Request', request=body, second=2))
    # the get and the replicaset list belong to the undo command, not to an investigation
    assert [i.action for i in items] == ['resolve_target', 'resolve_target', 'rollout_undo']
    assert items[1].details['part_of'] == 'rollout_undo'
    assert 'edit_deployment' in items[2].names


def test_rollout_history_some_time_before_a_patch_stays_an_investigation():
    items = classify(
        event('list', '/apis/apps/v1/namespaces/seo-tool/replicasets?labelSelector=app%3Dbackend-api',
              {'resource': 'replicasets', 'namespace': 'seo-tool', 'apiGroup': 'apps'}, second=1),
        event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), second=30))
    assert [i.action for i in items] == ['inspect_revisions', 'edit_deployment']


def test_get_before_a_write_is_part_of_the_write():
    body = {'spec': {'template': {'metadata': {'annotations': {'kubectl.kubernetes.io/restartedAt': 'x'}}}}}
    items = classify(
        event('get', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), second=1),
        event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), level='Request',
              request=body, second=1),
        event('get', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), second=20))
    assert [i.action for i in items] == ['resolve_target', 'rollout_restart', 'inspect_deployment']


def test_rollout_undo_inferred_at_metadata_level():
    items = classify(
        event('list', '/apis/apps/v1/namespaces/seo-tool/replicasets?labelSelector=app%3Dbackend-api',
              {'resource': 'replicasets', 'namespace': 'seo-tool', 'apiGroup': 'apps'}, second=1),
        event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), second=2))
    assert items[1].action == 'rollout_undo'
    assert items[0].action == 'resolve_target'
    assert 'inferred' in items[1].summary


def test_metadata_level_patch_without_replicaset_list_is_an_edit():
    items = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy()))
    assert items[0].action == 'edit_deployment'


def test_metadata_level_restart_by_field_manager():
    items = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api?fieldManager=kubectl-rollout',
                           deploy()))
    assert items[0].action == 'rollout_restart'


def test_scale_subresource_and_replicas():
    items = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api/scale',
                           deploy(sub='scale'), level='Request', request={'spec': {'replicas': 3}}))
    assert items[0].action == 'scale'
    assert items[0].details['replicas'] == 3


def test_exec_over_websocket_is_get_and_flushdb_is_cache_flush():
    uri = ('/api/v1/namespaces/seo-tool/pods/redis-5b7c9d8f6-h4j2k/exec?command=redis-cli&command=FLUSHDB'
           '&container=redis&stderr=true&stdout=true')
    items = classify(event('get', uri, pods('redis-5b7c9d8f6-h4j2k', 'exec'), code=101))
    assert items[0].action == 'cache_flush'
    assert 'exec' in items[0].names
    assert items[0].mutating
    shell = ('/api/v1/namespaces/seo-tool/pods/redis-5b7c9d8f6-h4j2k/exec?command=sh&command=-c'
             '&command=redis-cli+-n+0+flushall&container=redis&stdin=true&stdout=true&tty=true')
    assert classify(event('create', shell, pods('redis-5b7c9d8f6-h4j2k', 'exec')))[0].action == 'cache_flush'
    ping = '/api/v1/namespaces/seo-tool/pods/redis-5b7c9d8f6-h4j2k/exec?command=redis-cli&command=PING&container=redis'
    item = classify(event('get', ping, pods('redis-5b7c9d8f6-h4j2k', 'exec')))[0]
    assert item.action == 'exec' and not item.mutating


def test_dry_run_and_failed_requests_are_not_changes():
    body = {'spec': {'template': {'spec': {'containers': [{'name': 'backend-api', 'image': 'x'}]}}}}
    dry = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api?dryRun=All', deploy(),
                         level='Request', request=body))[0]
    assert dry.details['dry_run'] and not dry.mutating and '[dry run]' in dry.summary
    denied = classify(event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), code=403,
                            level='Request', request=body))[0]
    assert not denied.ok and not denied.mutating and '[HTTP 403]' in denied.summary


def test_only_trainees_and_only_response_complete():
    evs = [
        event('list', '/api/v1/namespaces/seo-tool/pods', pods(), stage='RequestReceived'),
        event('list', '/api/v1/namespaces/seo-tool/pods', pods(), user='trainer-anna', groups=('opsdrill:trainers',)),
        event('list', '/api/v1/namespaces/seo-tool/pods', pods(), user='system:serviceaccount:opsdrill:drill-runner',
              groups=('system:serviceaccounts', 'opsdrill:trainees')),
        event('list', '/api/v1/namespaces/seo-tool/pods', pods(), user='alice', groups=('devs',)),
        event('list', '/api/v1/namespaces/seo-tool/pods', pods()),
    ]
    assert [i.actor for i in classify(*evs)] == ['trainee-1']
    # a username list adds people outside the group
    assert sorted(i.actor for i in classify(*evs, trainees=['alice'])) == ['alice', 'trainee-1']
    # no group at all: only the named users
    assert [i.actor for i in classify(*evs, trainees=['alice'], trainee_groups=[])] == ['alice']


def test_discovery_and_watch_are_ignored():
    items = classify(event('get', '/api?timeout=32s'), event('watch', '/api/v1/namespaces/seo-tool/pods?watch=true', pods()))
    assert items == []


def test_other_namespaces_are_left_out_when_namespaces_given():
    evs = [event('list', '/api/v1/namespaces/kube-system/pods', pods(ns='kube-system')),
           event('list', '/api/v1/pods', {'resource': 'pods'}),
           event('list', '/api/v1/namespaces/seo-tool/pods', pods())]
    source = AuditLogSource(text='\n'.join(json.dumps(e) for e in evs) + '\n', namespaces=['seo-tool'])
    assert len(source.collect()) == 2
    assert source.stats['other_namespace'] == 1
    assert 'outside the drill namespaces' in source.note


def test_kubectl_logs_with_selector_resolves_pods_first():
    items = classify(
        event('list', '/api/v1/namespaces/seo-tool/pods?labelSelector=app%3Dapi-gateway', pods(), second=5),
        event('get', '/api/v1/namespaces/seo-tool/pods/api-gateway-7c9f8d6b4-mz7tq/log?container=api-gateway',
              pods('api-gateway-7c9f8d6b4-mz7tq', 'log'), second=5))
    assert [i.action for i in items] == ['resolve_log_pods', 'logs']


def test_fixture_log_counts():
    source = AuditLogSource(path=fx('audit-recovered.log'), namespaces=['seo-tool'])
    items = source.collect()
    actions = [i.action for i in items]
    assert {'list_pods', 'get_events', 'get_pod', 'logs', 'check_dependencies', 'view_metrics', 'inspect_revisions',
            'edit_deployment', 'test_endpoint'} <= set(actions)
    assert set(i.actor for i in items) == {'trainee-1'}
    assert source.stats['response_complete'] > source.stats['trainee_events']  # controller noise was read and dropped
    assert items == sorted(items, key=lambda i: i.ts)


def test_truncated_last_line_is_skipped_with_note():
    source = AuditLogSource(path=fx('audit-two-trainees.log'))
    items = source.collect()
    assert source.stats['truncated_last_line'] is True
    assert 'incomplete' in source.note
    assert {'trainee-1', 'trainee-2'} == set(i.actor for i in items)


def test_bad_json_in_the_middle_names_file_and_line():
    with pytest.raises(ScoringInputError) as info:
        AuditLogSource(path=fx('audit-bad-json.log')).collect()
    assert info.value.path.endswith('audit-bad-json.log')
    assert info.value.field == 'line 2'


def test_missing_stage_names_the_field():
    with pytest.raises(ScoringInputError) as info:
        AuditLogSource(path=fx('audit-missing-stage.log')).collect()
    assert info.value.field == 'line 2: stage'
    assert 'audit-missing-stage.log' in str(info.value)


@pytest.mark.parametrize('mutate, field', [
    (lambda e: e.pop('verb'), 'line 1: verb'),
    (lambda e: e['user'].pop('username'), 'line 1: user.username'),
    (lambda e: e.update(requestReceivedTimestamp='not a time'), 'line 1: requestReceivedTimestamp'),
    (lambda e: e.update(apiVersion='v1'), 'line 1: apiVersion'),
    (lambda e: e.update(objectRef='pods'), 'line 1: objectRef'),
])
def test_malformed_events(mutate, field):
    ev = event('list', '/api/v1/namespaces/seo-tool/pods', pods())
    mutate(ev)
    with pytest.raises(ScoringInputError) as info:
        classify(ev)
    assert info.value.field == field


def test_helpers():
    assert workload_of_pod('backend-api-6f7d9c8b5d-x2k9p') == 'backend-api'
    assert workload_of_pod('postgres-0') == 'postgres-0'
    assert parse_selector('app=x,tier in (frontend, worker),env!=prod') == {
        ('app', 'x'), ('tier', 'frontend'), ('tier', 'worker')}


@pytest.mark.parametrize('uri, resource, group', [
    ('/apis/authentication.k8s.io/v1/selfsubjectreviews', 'selfsubjectreviews', 'authentication.k8s.io'),
    ('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'selfsubjectaccessreviews', 'authorization.k8s.io'),
    ('/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', 'selfsubjectrulesreviews', 'authorization.k8s.io'),
])
def test_auth_whoami_and_can_i_are_no_changes(uri, resource, group):
    # kubectl auth whoami / can-i POST a review: verb create, but nothing changes
    items = classify(event('create', uri, {'resource': resource, 'apiGroup': group, 'apiVersion': 'v1'}))
    assert [i.action for i in items] == ['check_access']
    assert not items[0].mutating and items[0].category == 'other'


def test_requests_before_or_after_the_drill_are_left_out():
    # One namespace serves drill after drill: the previous drill's undo is not this drill's.
    evs = [event('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api', deploy(), second=1),
           event('list', '/api/v1/namespaces/seo-tool/pods', pods(), second=10),
           event('list', '/api/v1/namespaces/seo-tool/pods', pods(), second=50)]
    source = AuditLogSource(text='\n'.join(json.dumps(e) for e in evs) + '\n',
                            since=parse_ts('2026-11-22T17:35:05Z'), until=parse_ts('2026-11-22T17:35:40Z'))
    items = source.collect()
    assert [(i.action, i.ts.second) for i in items] == [('list_pods', 10)]
    assert source.stats['other_time'] == 2
    assert '2 before or after the drill' in source.note


def state_ref(resource='configmaps', name=DRILL_STATE_PREFIX, ns='seo-tool'):
    ref = {'resource': resource, 'namespace': ns, 'apiVersion': 'v1'}
    if name:
        ref['name'] = name
    return ref


@pytest.mark.parametrize('ev, action', [
    # kubectl get/describe cm opsdrill-drill-state (-o yaml): the answer key
    (event('get', '/api/v1/namespaces/seo-tool/configmaps/opsdrill-drill-state', state_ref()), 'read_drill_state'),
    # its companion Secret (snapshotted Secrets), same name
    (event('get', '/api/v1/namespaces/seo-tool/secrets/opsdrill-drill-state', state_ref('secrets')), 'read_drill_state'),
    # a drill state under another name (drill_snapshot's name option) still starts with the prefix
    (event('get', '/api/v1/namespaces/seo-tool/configmaps/opsdrill-drill-state-blue',
           state_ref(name='opsdrill-drill-state-blue')), 'read_drill_state'),
    # kubectl get cm opsdrill-drill-state -w: the API server names the object of a watch by its field selector
    (event('watch', '/api/v1/namespaces/seo-tool/configmaps?fieldSelector=metadata.name%3Dopsdrill-drill-state&watch=true',
           state_ref()), 'read_drill_state'),
    (event('list', '/api/v1/namespaces/seo-tool/configmaps?fieldSelector=metadata.name%3Dopsdrill-drill-state',
           state_ref()), 'read_drill_state'),
    # a list of all configmaps / secrets: the table and the data are the same request, so no finding
    (event('list', '/api/v1/namespaces/seo-tool/configmaps?limit=500', state_ref(name=None)), 'inspect_config'),
    (event('list', '/api/v1/namespaces/seo-tool/secrets?limit=500', state_ref('secrets', name=None)), 'inspect_config'),
    # the dead-man's switch code is only code
    (event('get', '/api/v1/namespaces/seo-tool/configmaps/opsdrill-deadman-code', state_ref(name='opsdrill-deadman-code')),
     'inspect_config'),
    # changing the drill state is a change, not a read
    (event('patch', '/api/v1/namespaces/seo-tool/configmaps/opsdrill-drill-state', state_ref()), 'edit_configmap'),
])
def test_drill_state_reads(ev, action):
    items = classify(ev)
    assert [i.action for i in items] == [action]
    if action == 'read_drill_state':
        item = items[0]
        assert "the drill's answer key" in item.summary
        assert item.category is None  # no tool category: earns nothing in tool usage
        assert not item.mutating and item.ok


def test_drill_state_read_by_someone_else_is_not_listed():
    uri = '/api/v1/namespaces/seo-tool/configmaps/opsdrill-drill-state'
    items = classify(event('get', uri, state_ref(), user='kubernetes-admin', groups=('kubeadm:cluster-admins',)),
                     event('get', uri, state_ref(), user='trainer-anna', groups=('opsdrill:trainers',)),
                     event('get', uri, state_ref(), user='system:serviceaccount:opsdrill:drill-runner',
                           groups=('system:serviceaccounts', 'opsdrill:trainees')))
    assert items == []


def test_refused_drill_state_read_is_an_attempt():
    item = classify(event('get', '/api/v1/namespaces/seo-tool/secrets/opsdrill-drill-state', state_ref('secrets'),
                          code=403))[0]
    assert item.action == 'read_drill_state' and not item.ok
    assert item.summary.startswith("tried to read the drill's answer key (secret seo-tool/opsdrill-drill-state)")
    assert '[HTTP 403]' in item.summary


@pytest.mark.parametrize('verb, uri, resource, name, code', [
    ('get', '/api/v1/namespaces/opsdrill-ctl-seo-tool/configmaps/opsdrill-drill-state', 'configmaps',
     'opsdrill-drill-state', 403),
    ('delete', '/apis/batch/v1/namespaces/opsdrill-ctl-seo-tool/jobs/opsdrill-deadman', 'jobs', 'opsdrill-deadman', 403),
    ('create', '/api/v1/namespaces/opsdrill-ctl-seo-tool/serviceaccounts/opsdrill-deadman/token', 'serviceaccounts',
     'opsdrill-deadman', 403),
])
def test_requests_into_the_control_namespace_are_flagged_attempts(verb, uri, resource, name, code):
    ref = state_ref(resource, name, ns='opsdrill-ctl-seo-tool')
    items = classify(event(verb, uri, ref, code=code), namespaces=['seo-tool'])
    assert [i.action for i in items] == ['read_drill_state']
    assert not items[0].mutating and not items[0].ok and items[0].category is None
    assert 'tried to' in items[0].summary


def test_watch_of_all_configmaps_is_still_ignored():
    assert classify(event('watch', '/api/v1/namespaces/seo-tool/configmaps?watch=true', state_ref(name=None))) == []


def test_drill_state_names_are_the_engines():
    # The scoring package keeps its own copy of the name (it runs without the rest of the collection).
    secret = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'db', 'namespace': 'seo-tool'}, 'data': {'a': 'Yg=='}}
    configmap, companion = snapshot.build_state_objects('seo-tool', {'fault': 'memory_limits'}, [secret])
    assert snapshot.STATE_CONFIGMAP == DRILL_STATE_PREFIX
    assert snapshot.control_namespace('seo-tool') == audit.CONTROL_PREFIX + 'seo-tool'
    assert configmap['metadata']['name'].startswith(DRILL_STATE_PREFIX)
    assert companion['kind'] == 'Secret' and companion['metadata']['name'].startswith(DRILL_STATE_PREFIX)


@pytest.mark.parametrize('verb, uri, ref, request_object, action', [
    # the headless Service Prometheus finds backend-api's pods by
    ('delete', '/api/v1/namespaces/seo-tool/services/backend-api-pods',
     {'resource': 'services', 'namespace': 'seo-tool', 'name': 'backend-api-pods', 'apiVersion': 'v1'},
     None, 'tamper_monitoring'),
    ('patch', '/api/v1/namespaces/seo-tool/services/api-gateway-pods',
     {'resource': 'services', 'namespace': 'seo-tool', 'name': 'api-gateway-pods', 'apiVersion': 'v1'},
     {'spec': {'selector': {'app': 'nothing'}}}, 'tamper_monitoring'),
    # the alert rules in the control namespace: refused, and an attempt on the drill
    ('patch', '/api/v1/namespaces/opsdrill-ctl-seo-tool/configmaps/prometheus-config',
     {'resource': 'configmaps', 'namespace': 'opsdrill-ctl-seo-tool', 'name': 'prometheus-config',
      'apiVersion': 'v1'}, {'data': {'opsdrill-seed-alerts.yml': 'groups: []'}}, 'read_drill_state'),
    # kubectl label deployment backend-api app.kubernetes.io/part-of-: out of the steady state
    ('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api',
     {'resource': 'deployments', 'namespace': 'seo-tool', 'name': 'backend-api', 'apiGroup': 'apps', 'apiVersion': 'v1'},
     {'metadata': {'labels': {'app.kubernetes.io/part-of': None}}}, 'tamper_selector'),
    ('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api',
     {'resource': 'deployments', 'namespace': 'seo-tool', 'name': 'backend-api', 'apiGroup': 'apps', 'apiVersion': 'v1'},
     [{'op': 'replace', 'path': '/metadata/labels/app.kubernetes.io~1part-of', 'value': 'elsewhere'}], 'tamper_selector'),
    # kubectl rollout undo sends the old template with the same labels: an ordinary fix
    ('patch', '/apis/apps/v1/namespaces/seo-tool/deployments/backend-api',
     {'resource': 'deployments', 'namespace': 'seo-tool', 'name': 'backend-api', 'apiGroup': 'apps', 'apiVersion': 'v1'},
     {'spec': {'template': {'metadata': {'labels': {'app': 'backend-api',
                                                    'app.kubernetes.io/part-of': 'opsdrill-seo-tool'}}}}},
     'edit_deployment'),
])
def test_writes_to_the_monitoring_and_the_selector_label_are_tampering(verb, uri, ref, request_object, action):
    items = classify(event(verb, uri, ref, level='Request', request=request_object))
    assert items and items[0].action == action, [(i.action, i.summary) for i in items]
    if action.startswith('tamper') or action == 'read_drill_state':
        assert items[0].category is None and not items[0].mutating


def test_monitoring_names_are_the_monitoring_roles():
    """The drill namespace keeps only the headless <app>-pods Services; the rest of the
    monitoring (every other name the template gives) is in the control namespace."""
    import pathlib
    import re
    import yaml
    role = pathlib.Path(snapshot.__file__).parents[3] / 'roles' / 'monitoring'
    apps = yaml.safe_load((role / 'defaults' / 'main.yml').read_text())['monitoring_scrape_apps']
    assert audit.MONITORING_NAMES == {app + '-pods' for app in apps}
    template = (role / 'templates' / 'standalone.yaml.j2').read_text()
    assert '  name: {{ app }}-pods\n  namespace: {{ monitoring_namespace }}' in template
    homed = re.findall(r'^  name: ([a-z-]+)\n  namespace: ([^\n]+)$', template, re.M)
    assert {'prometheus', 'alertmanager'} <= {name for name, _ns in homed}
    assert {where for _name, where in homed} == {'{{ _monitoring_home }}'}
    assert audit.MONITORING_SERVICES == {'prometheus', 'alertmanager'}


@pytest.mark.parametrize('name, service', [
    ('prometheus:9090', 'prometheus'), ('http:alertmanager:9093', 'alertmanager'),
    ('prometheus', 'prometheus'), ('https:prometheus', 'prometheus'), ('backend-api:80', 'backend-api')])
def test_proxied_service(name, service):
    assert audit.proxied_service(name) == service


def test_a_prometheus_query_through_the_control_namespace_is_reviewing_metrics():
    uri = '/api/v1/namespaces/opsdrill-ctl-seo-tool/services/prometheus:9090/proxy/api/v1/query?query=up'
    ref = {'resource': 'services', 'subresource': 'proxy', 'namespace': 'opsdrill-ctl-seo-tool',
           'name': 'prometheus:9090', 'apiVersion': 'v1'}
    items = classify(event('get', uri, ref))
    assert [(i.action, i.details['proxy_path']) for i in items] == [('view_metrics', '/api/v1/query')]
    # Anything else there is still an attempt on the drill's own objects.
    ref = {'resource': 'configmaps', 'namespace': 'opsdrill-ctl-seo-tool', 'name': 'prometheus-config',
           'apiVersion': 'v1'}
    items = classify(event('patch', '/api/v1/namespaces/opsdrill-ctl-seo-tool/configmaps/prometheus-config',
                           ref, code=403))
    assert [i.action for i in items] == ['read_drill_state']


def test_the_trainee_shells_requests_recorded_on_the_lab():
    """What scripts/trainee_shell.py sends for the seeds' `curl https://api.seo-tool.com/...`
    and `redis-cli FLUSHDB` (three requests recorded from the lab's audit log, trainee-1):
    the gateway through the service proxy, and an exec of redis-cli."""
    items = AuditLogSource(path=fx('audit-trainee-shell.log'), namespaces=['seo-tool']).collect()
    assert [(i.actor, i.action) for i in items] == [
        ('trainee-1', 'view_metrics'), ('trainee-1', 'cache_flush'), ('trainee-1', 'test_endpoint')]
    assert [i.details.get('proxy_path') for i in items] == ['/metrics', None, '/health']
