#!/usr/bin/env python
"""Measure the overhead of the opsdrill.drills.drill_scorecard callback.

Two parts:

1. Hooks: a synthetic play of N tasks is fed through the callback's hooks
   (task start, ok, retries of a progress task, drill_event results) and
   the end-of-run hook, which scores a recorded drill (fixture timeline,
   audit log and desk) and writes all five reports. Each part is timed.
2. Reference: a real ``ansible-playbook`` run of N ``ansible.builtin.debug``
   tasks on localhost, without the callback, gives the wall time such a
   play takes on this machine. The callback's time is reported as a share
   of it (target: < 1 %).

Usage::

    .venv/bin/python scripts/bench_callback.py [--tasks 200] [--repeat 5] [--no-playbook]

Prints a summary and, with --json, a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, 'tests', 'unit', 'scoring', 'fixtures')


def _collections_dir():
    """A temp ansible_collections/opsdrill/drills symlink to this repo."""
    base = tempfile.mkdtemp(prefix='opsdrill-bench-')
    os.makedirs(os.path.join(base, 'ansible_collections', 'opsdrill'))
    os.symlink(REPO, os.path.join(base, 'ansible_collections', 'opsdrill', 'drills'))
    return base


class NullDisplay(object):
    verbosity = 0

    def __init__(self):
        self.count = 0

    def display(self, msg, **kw):
        self.count += 1

    banner = warning = display


class Task(object):
    def __init__(self, index, action, task_vars=None):
        self.action = self.resolved_action = action
        self.vars = task_vars or {}
        self._uuid = 'task-%d' % index
        self.name = 'task %d' % index
        self.delegate_to = None

    def get_name(self):
        return self.name


class Host(object):
    def get_name(self):
        return 'localhost'


class Result(object):
    def __init__(self, task, data):
        self.task = task
        self.host = Host()
        self.result = data
        self.task_name = task.name


def synthetic_play(n_tasks, artifacts):
    """Tasks as a drill playbook has them: mostly plain, a few drill_event, one waiting task."""
    plays = []
    for index in range(n_tasks):
        if index % 25 == 0:
            task = Task(index, 'opsdrill.drills.drill_event')
            plays.append((task, {'changed': True, 'drill_artifacts_dir': artifacts,
                                 'timeline_file': os.path.join(artifacts, 'timeline.jsonl')}, 0))
        elif index == n_tasks // 2:
            task = Task(index, 'opsdrill.drills.steady_state', {'opsdrill_progress': True})
            plays.append((task, {'changed': False, 'healthy': True}, 30))  # 30 retries while waiting
        else:
            task = Task(index, 'ansible.builtin.command')
            plays.append((task, {'changed': False, 'rc': 0, 'stdout': 'x' * 200}, 0))
    return plays


def bench_hooks(n_tasks, repeat):
    from ansible_collections.opsdrill.drills.plugins.callback.drill_scorecard import CallbackModule

    per_task, end_of_run = [], []
    for _round in range(repeat):
        artifacts = tempfile.mkdtemp(prefix='opsdrill-bench-art-')
        shutil.copy(os.path.join(FIXTURES, 'timeline-recovered.jsonl'), os.path.join(artifacts, 'timeline.jsonl'))
        cb = CallbackModule(display=NullDisplay())
        cb._opts = {'artifacts_dir': None, 'audit_log': os.path.join(FIXTURES, 'audit-recovered.log'),
                    'audit_log_command': None, 'desk_file': os.path.join(FIXTURES, 'desk-full.json'),
                    'trainer_marks_file': None, 'trainees': [], 'trainee_groups': ['opsdrill:trainees'],
                    'rubric_file': None, 'catalog_entry_file': os.path.join(REPO, 'plugins', 'module_utils', 'catalog', 'faults.yml'),
                    'write_reports': True, 'show_table': True, 'progress': 'line', 'progress_interval': 30}
        play = synthetic_play(n_tasks, artifacts)
        t0 = time.perf_counter()
        for task, data, retries in play:
            cb.v2_playbook_on_task_start(task, False)
            for attempt in range(1, retries + 1):
                cb.v2_runner_retry(Result(task, dict(data, attempts=attempt, retries=retries + 1,
                                                     alert_state='firing', pods_ready=attempt % 3, pods_total=3)))
            cb.v2_runner_on_ok(Result(task, data))
        t1 = time.perf_counter()
        cb.v2_playbook_on_stats(None)
        t2 = time.perf_counter()
        assert os.path.isfile(os.path.join(artifacts, 'scorecard.html')), 'the callback did not write its reports'
        per_task.append((t1 - t0) / n_tasks)
        end_of_run.append(t2 - t1)
        shutil.rmtree(artifacts, ignore_errors=True)
    return statistics.median(per_task), statistics.median(end_of_run)


def bench_import(collections):
    """Milliseconds to import all of the scoring package (the callback imports it on first use).

    Returns (cold, warm): cold compiles every file (no bytecode cache, as with
    PYTHONDONTWRITEBYTECODE=1), warm uses a bytecode cache (kept in a temp dir,
    not in the work tree), as a normal installation does from its second run on.
    """
    # everything the end of the run needs (the progress line alone needs only the console part)
    code = ('import sys, time; sys.path.insert(0, %r); import ansible.plugins.callback, yaml; '
            'import ansible_collections.opsdrill.drills.plugins.callback.drill_scorecard as cb; '
            't = time.perf_counter(); s = cb._scoring(); s.build_scorecard; s.write_reports; s.render_table; '
            'print((time.perf_counter() - t) * 1000)' % collections)
    cache = tempfile.mkdtemp(prefix='opsdrill-bench-pyc-')
    try:
        cold_env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1', PYTHONPYCACHEPREFIX=cache + '-none')
        warm_env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        warm_env.pop('PYTHONDONTWRITEBYTECODE', None)
        results = {}
        for name, env in (('cold', cold_env), ('warm', warm_env)):
            runs = []
            for _round in range(4):
                proc = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, env=env, check=True)
                runs.append(float(proc.stdout.decode().strip()))
            results[name] = statistics.median(runs[1:])  # the first warm run writes the cache
        return results['cold'], results['warm']
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def bench_playbook(n_tasks, collections, with_callback=False):
    work = tempfile.mkdtemp(prefix='opsdrill-bench-play-')
    try:
        playbook = os.path.join(work, 'play.yml')
        with open(playbook, 'w') as handle:
            handle.write('- hosts: localhost\n  gather_facts: false\n  tasks:\n')
            for index in range(n_tasks):
                handle.write('    - name: task %d\n      ansible.builtin.debug:\n        msg: "step %d"\n' % (index, index))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_LOCALHOST_WARNING='false',
                   ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_NOCOLOR='1')
        if with_callback:
            env['ANSIBLE_CALLBACKS_ENABLED'] = 'opsdrill.drills.drill_scorecard'
        binary = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        t0 = time.perf_counter()
        proc = subprocess.run([binary, '-i', 'localhost,', '-c', 'local', playbook], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit('ansible-playbook failed:\n' + proc.stdout.decode(errors='replace')[-3000:])
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--tasks', type=int, default=200, help='tasks in the synthetic play (default 200)')
    parser.add_argument('--repeat', type=int, default=5, help='rounds of the hook benchmark (median is reported)')
    parser.add_argument('--no-playbook', action='store_true', help='skip the real ansible-playbook reference run')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args()

    collections = _collections_dir()
    sys.path.insert(0, collections)
    try:
        per_task, end_of_run = bench_hooks(args.tasks, args.repeat)
        cold_ms, warm_ms = bench_import(collections)
        import_s = warm_ms / 1000.0
        hooks_total = per_task * args.tasks + end_of_run + import_s
        figures = {
            'tasks': args.tasks,
            'import_ms': round(warm_ms, 2),
            'import_ms_no_bytecode': round(cold_ms, 2),
            'hook_us_per_task': round(per_task * 1e6, 2),
            'end_of_run_ms': round(end_of_run * 1e3, 2),
            'callback_total_ms': round(hooks_total * 1e3, 2),
        }
        if not args.no_playbook:
            wall = bench_playbook(args.tasks, collections)
            figures['playbook_wall_s'] = round(wall, 2)
            figures['overhead_percent'] = round(100.0 * hooks_total / wall, 3)
            # A drill waits for the team: its response window alone is 15 minutes by default.
            figures['overhead_percent_20min_drill'] = round(100.0 * hooks_total / 1200.0, 4)
    finally:
        shutil.rmtree(collections, ignore_errors=True)

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print('drill_scorecard callback overhead, synthetic play of %d tasks' % args.tasks)
    print('  import of the scoring package:        %8.2f ms (%.2f ms without a bytecode cache)'
          % (figures['import_ms'], figures['import_ms_no_bytecode']))
    print('  hooks per task (start, ok, retries):  %8.2f us' % figures['hook_us_per_task'])
    print('  end of run (score + write 5 reports): %8.2f ms' % figures['end_of_run_ms'])
    print('  callback total (import+hooks+end):    %8.2f ms' % figures['callback_total_ms'])
    if 'playbook_wall_s' in figures:
        print('  ansible-playbook, %d debug tasks:     %8.2f s' % (args.tasks, figures['playbook_wall_s']))
        print('  overhead:                             %8.3f %% of that play (target < 1 %%)' % figures['overhead_percent'])
        print('  overhead in a 20 minute drill:        %8.4f %%' % figures['overhead_percent_20min_drill'])


if __name__ == '__main__':
    main()
