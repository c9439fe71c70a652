# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that apply the rubric, which their action plugin fills in."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  catalog_paths:
    description: Team catalog files whose scenario records add checklists (the action reads them on the controller).
    type: list
    elements: path
    default: []
  rubric:
    description:
      - Set by the action plugin, not by hand - the rubric read from O(rubric_file) (or the default rubric)
        with every scenario record's checklist, as data.
    type: dict
"""
