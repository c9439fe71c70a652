# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Actions of the modules that apply the rubric (drill_scorecard, drill_desk).

The rubric is YAML (``scoring/rubrics/default.yml``, or a team's ``rubric_file``) and its
checklists are the catalog's scenario records (``catalog_paths`` adds a team's). Both are
read here, on the controller, once; the module gets the merged data as ``rubric``, so it
needs no data file, in the worker or as an AnsiballZ payload alike.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.errors import ScoringInputError
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.rubric import read_rubric_data, rubric_from_data
from ansible_collections.opsdrill.drills.plugins.plugin_utils.in_process import InProcessAction

__all__ = ["RubricAction", "rubric_argument"]


def rubric_argument(rubric_file=None, catalog_paths=None):
    """``{data, origin}``: the validated rubric with every scenario's checklist."""
    data, origin = read_rubric_data(rubric_file or None)
    rubric = rubric_from_data(data, origin, catalog.load(list(catalog_paths or [])).scenarios())
    return {"data": rubric.data, "origin": origin}


class RubricAction(InProcessAction):
    """InProcessAction that hands the module its ``rubric`` argument."""

    def needs_rubric(self, args):
        """Whether this task's module applies the rubric (reading it costs a catalog load,
        about 0.13 s in a fresh worker)."""
        return True

    def run(self, tmp=None, task_vars=None):
        args = self._task.args
        if not self.needs_rubric(args):
            return super().run(tmp, task_vars)
        try:
            args["rubric"] = rubric_argument(args.get("rubric_file"), args.get("catalog_paths"))
        except (ScoringInputError, catalog.CatalogError, OSError) as exc:
            raise AnsibleActionFail("rubric: %s" % exc)
        return super().run(tmp, task_vars)
