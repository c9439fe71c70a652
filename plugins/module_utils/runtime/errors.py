# -*- coding: utf-8 -*-
# Copyright: opsdrill contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime's own errors, shared by the op executor, the drill state and the restore."""
from __future__ import annotations

__all__ = ["IntegrityError", "RestoreError"]


class RestoreError(Exception):
    """A restore (or an operation of the fault injection) could not finish."""


class IntegrityError(RestoreError):
    """The drill state in the cluster is not the one the drill wrote."""
