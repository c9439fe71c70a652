# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of opsdrill.drills.drill_event: the timeline lives on the controller, so the
event is written here, in the worker, without starting a module (a drill writes about 17
events; each module start-up costs a few hundred milliseconds)."""
from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import drill_timeline


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, params = self.validate_argument_spec(argument_spec=drill_timeline.EVENT_ARGUMENT_SPEC)
        try:
            result.update(drill_timeline.record_event(params, self._play_context.check_mode))
        except drill_timeline.TimelineError as exc:
            result.update(failed=True, msg=str(exc))
        except OSError as exc:
            result.update(failed=True, msg="cannot write the timeline of %s: %s" % (params["drill"].get("drill_id"), exc))
        return result
