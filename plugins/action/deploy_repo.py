# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of opsdrill.drills.deploy_repo: the module runs in the controller's worker, without
AnsiballZ (plugin_utils/in_process.py says when it still starts as a module)."""
from __future__ import annotations

from ansible_collections.opsdrill.drills.plugins.modules import deploy_repo
from ansible_collections.opsdrill.drills.plugins.plugin_utils.in_process import InProcessAction


class ActionModule(InProcessAction):
    MODULE = deploy_repo
