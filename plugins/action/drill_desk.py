# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of opsdrill.drills.drill_desk: the module runs in the controller's worker, without
AnsiballZ (plugin_utils/in_process.py says when it still starts as a module), given the rubric
read here (plugin_utils/rubric_action.py)."""
from __future__ import annotations

from ansible_collections.opsdrill.drills.plugins.modules import drill_desk
from ansible_collections.opsdrill.drills.plugins.plugin_utils.rubric_action import RubricAction


class ActionModule(RubricAction):
    MODULE = drill_desk

    def needs_rubric(self, args):
        # Only opening a drill (mark targets, post-mortem headings) and collecting its
        # entries (marks against the rubric) apply it; close and archive do not.
        return args.get("action") in ("open", "collect")
