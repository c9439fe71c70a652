# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX survey of the drill job template from the catalog (playbooks/awx.yml); the
logic is plugins/module_utils/awx_survey.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.module_utils import awx_survey, catalog


def awx_survey_spec(catalog_paths, options=None, limits=None, defaults=None, variables=None):
    try:
        return awx_survey.survey_spec(catalog.load(list(catalog_paths or [])), options=options, limits=limits,
                                      defaults=defaults, variables=variables)
    except (catalog.CatalogError, awx_survey.SurveyError) as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"awx_survey_spec": awx_survey_spec}
