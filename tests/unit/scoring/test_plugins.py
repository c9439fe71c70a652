"""The drill_scorecard module and callback: thin wrappers over module_utils.scoring."""

import inspect
import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.opsdrill.drills.plugins.modules import drill_scorecard as module
from ansible_collections.opsdrill.drills.plugins.callback.drill_scorecard import CallbackModule

from ansible_collections.opsdrill.drills.plugins.plugin_utils.rubric_action import rubric_argument

from .conftest import CATALOG, REPO, fx

BIN = os.path.dirname(sys.executable)


def run_module(args):
    # What the action plugin adds on the controller: the rubric, read from its YAML.
    args = dict(args, rubric=args.get('rubric') or rubric_argument(args.get('rubric_file')))
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()


def _module_result(capsys, args):
    run_module(args)
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def artifacts(tmp_path):
    shutil.copy(fx('timeline-recovered.jsonl'), str(tmp_path / 'timeline.jsonl'))
    return tmp_path


def test_module_writes_reports_and_returns_summary(capsys, artifacts):
    result = _module_result(capsys, {
        'artifacts_dir': str(artifacts), 'audit_log': fx('audit-recovered.log'), 'desk_file': fx('desk-full.json'),
        'catalog_entry_file': CATALOG, 'trainer_marks': {'documentation.postmortem': {'score': 5}},
    })
    assert result['changed'] is True
    summary = result['summary']
    assert summary['drill_id'] == 'seo-tool-20261122T173000Z'
    assert summary['criteria']['documentation.postmortem']['points'] == 5
    assert summary['recovered_by'] == 'team'
    assert os.path.isfile(result['scorecard_file'])
    assert 'technical.problem_solving' in result['table']
    assert 'scorecard' not in result


def test_module_check_mode_writes_nothing(capsys, artifacts):
    result = _module_result(capsys, {'artifacts_dir': str(artifacts), '_ansible_check_mode': True})
    assert result['changed'] is True
    assert not (artifacts / 'scorecard.json').exists()


def test_module_audit_log_command(capsys, artifacts):
    result = _module_result(capsys, {
        'artifacts_dir': str(artifacts), 'audit_log_command': ['cat', fx('audit-recovered.log')],
        'write_reports': False, 'return_scorecard': True,
    })
    sources = dict((s['name'], s) for s in result['scorecard']['sources'])
    assert sources['audit']['available'] and sources['audit']['items'] > 5
    assert 'cat' in sources['audit']['label']
    assert result['reports'] == {}


def test_module_reports_bad_input_with_file_and_field(capsys, artifacts):
    run_module({'artifacts_dir': str(artifacts), 'desk_file': fx('desk-bad-kind.json')})
    result = json.loads(capsys.readouterr().out)
    assert result['failed'] is True
    assert result['path'].endswith('desk-bad-kind.json')
    assert result['field'] == '[1].kind'
    assert 'desk-bad-kind.json' in result['msg']


def test_module_failing_audit_command(capsys, artifacts):
    run_module({'artifacts_dir': str(artifacts), 'audit_log_command': ['false']})
    result = json.loads(capsys.readouterr().out)
    assert result['failed'] and 'audit_log_command failed' in result['msg']


# Callback ---------------------------------------------------------------------------
class FakeTask(object):
    def __init__(self, action, name='task', vars=None, uuid='u1'):
        self.action = action
        self.resolved_action = action
        self.vars = vars or {}
        self._uuid = uuid
        self.delegate_to = None
        self.name = name

    def get_name(self):
        return self.name


class FakeHost(object):
    def __init__(self, name='localhost'):
        self.name = name

    def get_name(self):
        return self.name


class FakeResult(object):
    def __init__(self, task, data, host='localhost'):
        self.task = task
        self.host = FakeHost(host)
        self.result = data
        self.task_name = task.name


class FakeDisplay(object):
    verbosity = 0

    def __init__(self):
        self.lines = []

    def display(self, msg, **kw):
        self.lines.append(msg)

    def banner(self, msg, **kw):
        self.lines.append('== %s' % msg)

    def warning(self, msg, **kw):
        self.lines.append('WARNING %s' % msg)


def make_callback(**opts):
    cb = CallbackModule(display=FakeDisplay())
    base = {'artifacts_dir': None, 'audit_log': None, 'audit_log_command': None, 'desk_file': None,
            'trainer_marks_file': None, 'trainees': [], 'trainee_groups': ['opsdrill:trainees'], 'rubric_file': None,
            'catalog_entry_file': None, 'write_reports': True, 'show_table': True, 'progress': 'line',
            'progress_interval': 30}
    base.update(opts)
    cb._opts = base
    return cb


def test_callback_scores_from_drill_event_results(artifacts):
    cb = make_callback(audit_log=fx('audit-recovered.log'), catalog_entry_file=CATALOG)
    event = FakeTask('opsdrill.drills.drill_event', uuid='e1')
    cb.v2_playbook_on_task_start(event, False)
    cb.v2_runner_on_ok(FakeResult(event, {'drill_artifacts_dir': str(artifacts),
                                          'timeline_file': str(artifacts / 'timeline.jsonl')}))
    cb.v2_playbook_on_stats(None)
    out = '\n'.join(cb._display.lines)
    assert 'technical.problem_solving' in out and 'PASS' in out
    assert (artifacts / 'scorecard.html').is_file()  # the module did not run: the callback wrote the reports
    assert 'scorecard callback' in out


def test_callback_uses_module_summary_and_writes_nothing(artifacts):
    cb = make_callback(artifacts_dir=str(artifacts))
    task = FakeTask('opsdrill.drills.drill_scorecard', uuid='s1')
    summary = {'drill_id': 'd-42', 'scenario': 'outage', 'fault': 'memory_limits', 'result': 'fail', 'points': 12,
               'points_assessed_max': 40, 'points_max': 100, 'percent': 30.0, 'time_to_detect_s': 90,
               'time_to_acknowledge_s': None, 'time_to_recover_s': None, 'recovered_by': 'rollback', 'rollback_s': 30,
               'criteria': {'technical.service_recovery': {'status': 'fail', 'points': 0, 'points_max': 10}},
               'warnings': [], 'reports': {'html': '/x/scorecard.html'}}
    cb.v2_runner_on_ok(FakeResult(task, {'summary': summary}))
    cb.v2_playbook_on_stats(None)
    out = '\n'.join(cb._display.lines)
    assert 'd-42' in out and '(rollback)' in out and '/x/scorecard.html' in out
    assert not (artifacts / 'scorecard.json').exists()


def test_callback_reports_bad_input_as_warning(artifacts):
    cb = make_callback(artifacts_dir=str(artifacts), desk_file=fx('desk-bad-kind.json'))
    cb.v2_playbook_on_stats(None)
    warning = [l for l in cb._display.lines if l.startswith('WARNING')]
    assert warning and 'desk-bad-kind.json' in warning[0] and '[1].kind' in warning[0]


def test_callback_progress_line_only_for_marked_tasks():
    cb = make_callback(progress='line', progress_interval=3600)
    plain = FakeTask('ansible.builtin.uri', uuid='p0')
    marked = FakeTask('ansible.builtin.uri', uuid='p1', vars={'opsdrill_progress': True})
    waiter = FakeTask('opsdrill.drills.drill_wait', uuid='p2')
    cb.v2_runner_retry(FakeResult(plain, {'attempts': 1, 'retries': 10}))
    assert cb._display.lines == []
    for attempt, (alert, ready) in enumerate([('firing', 0), ('firing', 0), ('firing', 1), ('resolved', 3)], 1):
        cb.v2_runner_retry(FakeResult(marked, {'attempts': attempt, 'retries': 10, 'alert_state': alert,
                                               'pods_ready': ready, 'pods_total': 3}))
    # same state twice within the interval: one line, not two
    assert len(cb._display.lines) == 3
    assert 'alert firing' in cb._display.lines[0] and 'pods ready 0/3' in cb._display.lines[0]
    assert 'alert resolved' in cb._display.lines[-1] and 'pods ready 3/3' in cb._display.lines[-1]
    cb.v2_runner_retry(FakeResult(waiter, {'attempts': 1, 'retries': 5, 'resources': [
        {'kind': 'Pod', 'status': {'conditions': [{'type': 'Ready', 'status': 'True'}]}},
        {'kind': 'Pod', 'status': {'conditions': [{'type': 'Ready', 'status': 'False'}]}}]}))
    assert 'pods ready 1/2' in cb._display.lines[-1]


def test_callback_erase_mode_redraws_one_line():
    cb = make_callback(progress='erase')
    marked = FakeTask('ansible.builtin.uri', name='Wait for recovery', uuid='p1', vars={'opsdrill_progress': 'true'})
    cb.v2_runner_retry(FakeResult(marked, {'attempts': 1, 'retries': 10, 'alert_state': 'firing'}))
    cb.v2_runner_retry(FakeResult(marked, {'attempts': 2, 'retries': 10, 'alert_state': 'firing'}))
    first, second = cb._display.lines
    erase = '\x1b[1A\x1b[2K'
    # first retry: erase the stdout callback's FAILED - RETRYING line; later: also our previous line
    assert first.count(erase) == 1 and second.count(erase) == 2
    assert second.endswith('check 2/10')


def test_callback_progress_off():
    cb = make_callback(progress='off')
    marked = FakeTask('opsdrill.drills.drill_wait', uuid='p1')
    cb.v2_runner_retry(FakeResult(marked, {'attempts': 1, 'retries': 10}))
    assert cb._display.lines == []


# Real ansible runs ---------------------------------------------------------------------
@pytest.fixture(scope='module')
def collections_path(tmp_path_factory):
    base = tmp_path_factory.mktemp('collections')
    os.makedirs(str(base / 'ansible_collections' / 'opsdrill'))
    os.symlink(REPO, str(base / 'ansible_collections' / 'opsdrill' / 'drills'))
    return str(base)


def _env(collections_path, **extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_NOCOLOR='1', ANSIBLE_DEPRECATION_WARNINGS='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               PATH=BIN + os.pathsep + os.environ.get('PATH', ''))
    env.update(extra)
    return env


@pytest.mark.parametrize('plugin_type', ['callback', 'module'])
def test_ansible_doc_reads_plugin_documentation(collections_path, plugin_type):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', plugin_type, '--json', 'opsdrill.drills.drill_scorecard'],
                          env=_env(collections_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)['opsdrill.drills.drill_scorecard']
    assert doc['doc']['options']
    if plugin_type == 'callback':
        assert doc['doc']['options']['artifacts_dir']['env'][0]['name'] == 'OPSDRILL_ARTIFACTS_DIR'
    else:
        assert doc['return']['summary']


def test_playbook_with_module_and_callback(collections_path, tmp_path):
    art = tmp_path / 'art'
    art.mkdir()
    shutil.copy(fx('timeline-rollback-only.jsonl'), str(art / 'timeline.jsonl'))
    playbook = tmp_path / 'drill.yml'
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Score the drill
      opsdrill.drills.drill_scorecard:
        artifacts_dir: %(art)s
        audit_log: %(audit)s
        desk_file: %(desk)s
        catalog_entry_file: %(catalog)s
      register: score
    - name: Publish for AWX
      ansible.builtin.set_stats:
        data:
          opsdrill_scorecard: "{{ score.summary }}"
    - name: Summary is usable
      ansible.builtin.assert:
        that:
          - score.summary.recovered_by == 'rollback'
          - score.summary.criteria['technical.service_recovery'].points == 0
""" % dict(art=art, audit=fx('audit-rollback-only.log'), desk=fx('desk-full.json'), catalog=CATALOG))
    proc = subprocess.run(
        [os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', '-e',
         'ansible_python_interpreter=%s' % sys.executable, str(playbook)],
        env=_env(collections_path, ANSIBLE_CALLBACKS_ENABLED='opsdrill.drills.drill_scorecard'),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    assert 'OPSDRILL SCORECARD' in out
    assert 'recover - (rollback)' in out
    assert 'scorecard callback' in out
    assert (art / 'scorecard.json').is_file() and (art / 'junit.xml').is_file()


def test_the_desk_action_reads_the_rubric_only_where_the_module_applies_it():
    """drill_desk applies the rubric when it opens a drill and when it collects it; close and
    archive run without it (no catalog load in their workers)."""
    from ansible_collections.opsdrill.drills.plugins.action.drill_desk import ActionModule
    from ansible_collections.opsdrill.drills.plugins.modules import drill_desk
    assert [a for a in ('open', 'close', 'collect', 'archive') if ActionModule.needs_rubric(None, {'action': a})] \
        == ['open', 'collect']
    # The module reads its rubric argument in _open and _collect, nowhere else.
    uses = inspect.getsource(drill_desk).count('p["rubric"]')
    assert uses == 2 and all('p["rubric"]' in inspect.getsource(f) for f in (drill_desk._open, drill_desk._collect))
