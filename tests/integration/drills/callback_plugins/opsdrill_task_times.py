# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: one JSON line per task start and end, into $OPSDRILL_TASK_TIMES.

The drill tests and scripts/bench_drills.py use it to measure from the start of a task
(e.g. "Inject the fault") to what the cluster shows."""

from __future__ import annotations

DOCUMENTATION = r"""
name: opsdrill_task_times
type: aggregate
short_description: Task start and end times as JSON lines (tests only)
description:
  - Writes C({"task", "event", "epoch"}) lines to the file named by E(OPSDRILL_TASK_TIMES).
requirements:
  - enable with ANSIBLE_CALLBACKS_ENABLED and ANSIBLE_CALLBACK_PLUGINS
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "opsdrill_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, task, event):
        path = os.environ.get("OPSDRILL_TASK_TIMES")
        if not path:
            return
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"task": task.get_name(), "event": event, "epoch": time.time()}) + "\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write(task, "start")

    def v2_runner_on_ok(self, result):
        self._write(result._task, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result._task, "failed")
