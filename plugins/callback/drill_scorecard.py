# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: drill_scorecard
type: aggregate
short_description: Drill scorecard table and recovery progress line for opsdrill playbooks
version_added: "0.1.0"
author:
  - opsdrill contributors (@opsdrill)
description:
  - At the end of a drill run, prints a compact scorecard table (criteria, points, time to detect,
    acknowledge, recover, rollback) and how long the run and this callback took.
  - The scorecard comes from the C(opsdrill.drills.drill_scorecard) module when the playbook ran it
    (its result is picked up); otherwise this callback scores the drill itself from the artifacts dir
    and, unless O(write_reports=false), writes the reports there.
  - The artifacts dir is taken from the C(drill_artifacts_dir) / C(timeline_file) results of
    C(opsdrill.drills.drill_event) tasks, or from O(artifacts_dir).
  - While the playbook waits for recovery, tasks of module C(opsdrill.drills.drill_wait) or with the task
    variable C(opsdrill_progress=true) get one progress line (elapsed time, alert state, pods ready)
    for their retries. This is an aggregate callback, so it cannot silence the stdout callback's own
    C(FAILED - RETRYING) lines; on a terminal with the default stdout callback it erases them and
    redraws one line, elsewhere (AWX, CI logs) it adds a progress line at most every
    O(progress_interval) seconds or when the state changes. See docs/scoring.md.
requirements:
  - Enable it, e.g. C(callbacks_enabled = opsdrill.drills.drill_scorecard) in ansible.cfg
    or C(ANSIBLE_CALLBACKS_ENABLED=opsdrill.drills.drill_scorecard).
options:
  artifacts_dir:
    description: Drill artifacts dir, when no C(drill_event) task reported one.
    type: path
    env:
      - name: OPSDRILL_ARTIFACTS_DIR
    ini:
      - section: opsdrill_scorecard
        key: artifacts_dir
  audit_log:
    description: Kubernetes audit log (JSON lines) to score from, when the callback scores itself.
    type: path
    env:
      - name: OPSDRILL_AUDIT_LOG
    ini:
      - section: opsdrill_scorecard
        key: audit_log
  audit_log_command:
    description:
      - Command whose output is the audit log (run without a shell, split like a shell would),
        e.g. C(docker exec opsdrill-control-plane cat /var/log/kubernetes/audit.log).
    type: str
    env:
      - name: OPSDRILL_AUDIT_LOG_COMMAND
    ini:
      - section: opsdrill_scorecard
        key: audit_log_command
  desk_file:
    description: Incident desk entries (JSON); without it C(desk.json) in the artifacts dir is read when it exists.
    type: path
    env:
      - name: OPSDRILL_DESK_FILE
    ini:
      - section: opsdrill_scorecard
        key: desk_file
  trainer_marks_file:
    description: Trainer marks (YAML/JSON).
    type: path
    env:
      - name: OPSDRILL_TRAINER_MARKS
    ini:
      - section: opsdrill_scorecard
        key: trainer_marks_file
  trainees:
    description: Trainee usernames.
    type: list
    elements: str
    default: []
    env:
      - name: OPSDRILL_TRAINEES
    ini:
      - section: opsdrill_scorecard
        key: trainees
  trainee_groups:
    description: Groups whose members are trainees.
    type: list
    elements: str
    default: ['opsdrill:trainees']
    env:
      - name: OPSDRILL_TRAINEE_GROUPS
    ini:
      - section: opsdrill_scorecard
        key: trainee_groups
  rubric_file:
    description: Team rubric (YAML/JSON); the default rubric otherwise.
    type: path
    env:
      - name: OPSDRILL_RUBRIC
    ini:
      - section: opsdrill_scorecard
        key: rubric_file
  catalog_entry_file:
    description: Catalog entry of the drill's fault (YAML/JSON), or a whole faults.yml.
    type: path
    env:
      - name: OPSDRILL_CATALOG_ENTRY
    ini:
      - section: opsdrill_scorecard
        key: catalog_entry_file
  write_reports:
    description: Write the reports when the drill_scorecard module did not run.
    type: bool
    default: true
    env:
      - name: OPSDRILL_SCORECARD_WRITE_REPORTS
    ini:
      - section: opsdrill_scorecard
        key: write_reports
  show_table:
    description: Print the scorecard table at the end of the run.
    type: bool
    default: true
    env:
      - name: OPSDRILL_SCORECARD_TABLE
    ini:
      - section: opsdrill_scorecard
        key: show_table
  progress:
    description: Show the recovery progress line for marked tasks.
    type: str
    default: auto
    choices:
      auto: erase and redraw on a terminal with the default stdout callback, else C(line)
      erase: always erase the stdout callback's retry line and redraw one progress line
      line: a progress line at most every O(progress_interval) seconds or on a state change
      'off': no progress line
    env:
      - name: OPSDRILL_PROGRESS
    ini:
      - section: opsdrill_scorecard
        key: progress
  progress_interval:
    description: In C(line) mode, the least seconds between two progress lines of the same state.
    type: float
    default: 30
    env:
      - name: OPSDRILL_PROGRESS_INTERVAL
    ini:
      - section: opsdrill_scorecard
        key: progress_interval
'''

EXAMPLES = r'''
# ansible.cfg
# [defaults]
# callbacks_enabled = opsdrill.drills.drill_scorecard
# [opsdrill_scorecard]
# audit_log_command = docker exec opsdrill-control-plane cat /var/log/kubernetes/audit.log
# trainees = trainee-1,trainee-2

# A task that gets the progress line while it retries
# - name: Wait for the team to restore steady state
#   opsdrill.drills.steady_state:
#     namespace: seo-tool
#   register: steady
#   until: steady.healthy
#   retries: 90
#   delay: 10
#   vars:
#     opsdrill_progress: true
#     opsdrill_progress_label: waiting for the team
'''

import math
import os
import shlex
import shutil
import subprocess
import sys
import time

from ansible import constants as C
from ansible.plugins.callback import CallbackBase


def _scoring():
    """The scoring package, imported on first use.

    A playbook that runs no drill (the callback enabled globally) never pays
    for the import.
    """
    from ansible_collections.opsdrill.drills.plugins.module_utils import scoring
    return scoring


_TRUE = (True, 'true', 'True', 'yes', 'on', '1', 1)
_DEFAULT_STDOUT = ('default', 'ansible.builtin.default')
_ERASE_LINE = '\x1b[1A\x1b[2K'


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'opsdrill.drills.drill_scorecard'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None, options=None):
        super().__init__(display=display, options=options)
        self._t_start = time.monotonic()
        self._overhead = 0.0
        self._artifacts_dir = None
        self._timeline_file = None
        self._module_summary = None
        self._module_table = None
        self._progress_tasks = {}
        self._progress = {}  # task uuid -> state
        self._opts = {}

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._opts = dict((k, self.get_option(k)) for k in (
            'artifacts_dir', 'audit_log', 'audit_log_command', 'desk_file', 'trainer_marks_file', 'trainees',
            'trainee_groups', 'rubric_file', 'catalog_entry_file', 'write_reports', 'show_table', 'progress',
            'progress_interval'))

    # Task recognition -------------------------------------------------------------
    @staticmethod
    def _action(task):
        action = getattr(task, 'resolved_action', None) or getattr(task, 'action', None) or ''
        return str(action)

    def _is_progress_task(self, task):
        uuid = getattr(task, '_uuid', None)
        known = self._progress_tasks.get(uuid)
        if known is not None:
            return known
        marked = self._action(task).endswith('drill_wait')
        if not marked:
            task_vars = getattr(task, 'vars', None) or {}
            try:
                marked = task_vars.get('opsdrill_progress') in _TRUE
            except (AttributeError, TypeError):
                marked = False
        self._progress_tasks[uuid] = marked
        return marked

    # Hooks -------------------------------------------------------------------------------
    def v2_playbook_on_task_start(self, task, is_conditional):
        t0 = time.perf_counter()
        self._is_progress_task(task)
        self._overhead += time.perf_counter() - t0

    def _collect(self, result):
        action = self._action(result.task)
        if action.endswith('drill_event'):
            data = result.result
            if data.get('drill_artifacts_dir'):
                self._artifacts_dir = str(data['drill_artifacts_dir'])
            if data.get('timeline_file'):
                self._timeline_file = str(data['timeline_file'])
        elif action.endswith('drill_scorecard'):
            data = result.result
            if isinstance(data.get('summary'), dict):
                self._module_summary = data['summary']
                self._module_table = data.get('table')

    def v2_runner_on_ok(self, result):
        t0 = time.perf_counter()
        self._collect(result)
        self._end_progress(result)
        self._overhead += time.perf_counter() - t0

    def v2_runner_item_on_ok(self, result):
        t0 = time.perf_counter()
        self._collect(result)
        self._overhead += time.perf_counter() - t0

    def v2_runner_on_failed(self, result, ignore_errors=False):
        t0 = time.perf_counter()
        self._end_progress(result)
        self._overhead += time.perf_counter() - t0

    def v2_runner_on_unreachable(self, result):
        self.v2_runner_on_failed(result)

    # Progress line -------------------------------------------------------------------------
    def _progress_mode(self):
        mode = self._opts.get('progress') or 'auto'
        if mode != 'auto':
            return mode
        stdout_cb = str(getattr(C, 'DEFAULT_STDOUT_CALLBACK', 'default'))
        isatty = getattr(sys.stdout, 'isatty', lambda: False)()
        if isatty and stdout_cb in _DEFAULT_STDOUT and self._display.verbosity < 2:
            return 'erase'
        return 'line'

    def v2_runner_retry(self, result):
        t0 = time.perf_counter()
        try:
            task = result.task
            if self._opts.get('progress', 'auto') != 'off' and self._is_progress_task(task):
                self._show_progress(result)
        finally:
            self._overhead += time.perf_counter() - t0

    def _show_progress(self, result):
        task = result.task
        uuid = getattr(task, '_uuid', None)
        host = result.host.get_name()
        state = self._progress.get(uuid)
        now = time.monotonic()
        if state is None:
            state = self._progress[uuid] = {'start': now, 'hosts': set(), 'rows': 0, 'last': 0.0, 'sig': None,
                                            'mode': self._progress_mode()}
        state['hosts'].add(host)
        data = result.result
        scoring = _scoring()
        fields = scoring.progress_fields(data, now - state['start'])
        label = (getattr(task, 'vars', None) or {}).get('opsdrill_progress_label') or 'waiting for recovery'
        line = scoring.render_progress(fields, str(label))
        if len(state['hosts']) > 1:
            line = '[%s] %s' % (host, line)
        mode = state['mode'] if len(state['hosts']) == 1 else 'line'
        if mode == 'erase':
            cols = max(20, shutil.get_terminal_size((100, 24)).columns)
            task_name = getattr(result, 'task_name', None) or task.get_name()
            retries_left = (data.get('retries') or 0) - (data.get('attempts') or 0)
            default_msg = 'FAILED - RETRYING: [%s]: %s (%d retries left).' % (self.host_label(result), task_name, retries_left)
            rows = max(1, int(math.ceil(len(default_msg) / float(cols))))
            if len(line) >= cols:
                line = line[:cols - 4] + '...'
            self._display.display(_ERASE_LINE * (rows + state['rows']) + '\r' + line, screen_only=True)
            state['rows'] = 1
            return
        sig = (fields.get('alert_state'), fields.get('pods_ready'), fields.get('pods_total'))
        interval = float(self._opts.get('progress_interval') or 30)
        if sig != state['sig'] or now - state['last'] >= interval:
            self._display.display(line)
            state['last'] = now
            state['sig'] = sig

    def _end_progress(self, result):
        task = getattr(result, 'task', None)
        uuid = getattr(task, '_uuid', None)
        if uuid in self._progress:
            del self._progress[uuid]

    # End of run -----------------------------------------------------------------------------
    def _audit_text(self):
        command = self._opts.get('audit_log_command')
        if not command or self._opts.get('audit_log'):
            return None, None
        argv = shlex.split(command)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=False)
        if proc.returncode != 0:
            raise _scoring().ScoringError('audit_log_command failed (rc=%d): %s' % (proc.returncode, proc.stderr.decode('utf-8', 'replace').strip()))
        return proc.stdout.decode('utf-8', 'replace'), 'audit log from `%s`' % command

    def _score_here(self):
        artifacts_dir = self._artifacts_dir or self._opts.get('artifacts_dir')
        timeline_file = self._timeline_file
        if not artifacts_dir and not timeline_file:
            return None
        if timeline_file and not artifacts_dir:
            artifacts_dir = os.path.dirname(timeline_file)
        if not os.path.isfile(timeline_file or os.path.join(artifacts_dir, 'timeline.jsonl')):
            return None
        audit_text, audit_label = self._audit_text()
        scoring = _scoring()
        scorecard, rubric = scoring.build_scorecard(
            artifacts_dir=artifacts_dir, timeline_file=timeline_file, audit_log=self._opts.get('audit_log'),
            audit_text=audit_text, audit_label=audit_label, desk_file=self._opts.get('desk_file'),
            trainer_marks_file=self._opts.get('trainer_marks_file'), trainees=self._opts.get('trainees'),
            trainee_groups=self._opts.get('trainee_groups'), rubric_file=self._opts.get('rubric_file'),
            catalog_entry_file=self._opts.get('catalog_entry_file'))
        reports = {}
        if self._opts.get('write_reports', True):
            reports, dummy = scoring.write_reports(scorecard, artifacts_dir, rubric=rubric)
        return scoring.summarize(scorecard, reports), scoring.render_table(scorecard)

    def v2_playbook_on_stats(self, stats):
        t0 = time.perf_counter()
        self._progress.clear()
        table = None
        summary = None
        try:
            if self._module_summary is not None:
                summary = self._module_summary
                table = self._module_table or _scoring().render_table(summary)
            else:
                scored = self._score_here()
                if scored:
                    summary, table = scored
        except (_scoring().ScoringError, OSError, subprocess.SubprocessError) as exc:
            self._display.warning('opsdrill scorecard: %s' % exc)
        if table and self._opts.get('show_table', True):
            self._display.banner('OPSDRILL SCORECARD')
            self._display.display(table)
            reports = (summary or {}).get('reports') or {}
            if reports.get('html'):
                self._display.display('  report: %s' % reports['html'])
        self._overhead += time.perf_counter() - t0
        wall = time.monotonic() - self._t_start
        if table or self._artifacts_dir:
            share = 100.0 * self._overhead / wall if wall > 0 else 0.0
            self._display.display('  run %s, scorecard callback %.1f ms (%.2f%% of the run)' % (
                _fmt(wall), self._overhead * 1000.0, share))


def _fmt(seconds):
    total = int(round(seconds))
    return '%d:%02d' % divmod(total, 60)
