# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run an opsdrill module inside the controller's worker process instead of as AnsiballZ.

The drill engine's modules all run on the controller (they talk to the API server and
Prometheus over HTTPS and write the trainer's artifacts there). Started as modules, each
task pays for a zip payload, a new Python interpreter and the import of
``ansible.module_utils.basic``: 0.4 to 1 s on the lab's 2 cores, about 15 times a drill.
Here the action imports the module's file, validates the task's arguments with the
module's own ``SPEC`` (types, defaults, choices, required_if, ...) and calls its
``run(module)`` with a stand-in for ``AnsibleModule`` that raises instead of exiting.

Where the in-process run would differ from a module run, the action starts the module as
usual: a connection other than local (the module must run on that host), ``become``, or
a task ``environment`` (the module would see it, the worker does not).
"""
from __future__ import annotations

import json
import shlex
import subprocess

from ansible.plugins.action import ActionBase

__all__ = ["ControllerModule", "InProcessAction", "ModuleDone"]

_LOCAL = ("local", "ansible.builtin.local")


class ModuleDone(BaseException):
    """exit_json/fail_json of the stand-in. A BaseException like AnsibleModule's
    SystemExit, so that a module's ``except Exception`` does not swallow its own exit."""

    def __init__(self, result):
        super().__init__(result.get("msg", ""))
        self.result = result


class ControllerModule:
    """The part of ``AnsibleModule`` that opsdrill's module bodies use."""

    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def exit_json(self, **result):
        raise ModuleDone(result)

    def fail_json(self, msg, **result):
        result.update(failed=True, msg=msg)
        raise ModuleDone(result)

    @staticmethod
    def run_command(args):
        """AnsibleModule.run_command for an argv list or a string (split like a shell
        would, never run by one): (rc, stdout, stderr)."""
        argv = shlex.split(args) if isinstance(args, str) else [str(arg) for arg in args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as exc:
            return 127, "", str(exc)
        return proc.returncode, proc.stdout, proc.stderr


class InProcessAction(ActionBase):
    """Base of the engine modules' actions. Subclasses set ``MODULE``, the module's
    Python file (it has ``SPEC``, the ``AnsibleModule`` keyword arguments, and ``run``)."""

    TRANSFERS_FILES = False
    MODULE = None

    def _runs_here(self):
        # The play's inherited environment is a list of (mostly empty) dicts.
        if self._play_context.become or any(self._task.environment or []):
            return False
        # The connection this task really uses (delegate_to included).
        return getattr(self._connection, "transport", None) in _LOCAL

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        if not self._runs_here():
            return self._execute_module(module_name=self._task.resolved_action or self._task.action,
                                        task_vars=task_vars)
        result = super().run(tmp, task_vars)
        spec = dict(self.MODULE.SPEC)
        spec.pop("supports_check_mode", None)
        argument_spec = spec.pop("argument_spec")
        _validation, params = self.validate_argument_spec(argument_spec=argument_spec, **spec)
        # What a module gets: plain JSON values, not the templar's tagged strings (whose
        # types differ from the API server's, e.g. in a snapshot comparison).
        params = json.loads(json.dumps(params))
        module = ControllerModule(params, check_mode=bool(self._play_context.check_mode),
                                  diff=bool(self._play_context.diff))
        try:
            self.MODULE.run(module)
            raise ModuleDone({"failed": True, "msg": "%s returned without a result" % self._task.action})
        except ModuleDone as done:
            result.update(done.result)
        if module.warnings:
            result["warnings"] = result.get("warnings", []) + module.warnings
        return result
