# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the scoring package."""

from __future__ import annotations


class ScoringError(Exception):
    """Base class of every error the scoring package raises on purpose."""


class ScoringInputError(ScoringError):
    """A rubric, trainer-marks, evidence or timeline input is malformed.

    ``path`` names the file (or a label such as ``<trainer_marks var>`` when the
    input did not come from a file), ``field`` the offending field as a
    JSON-path-like string (``criteria[3].points``, ``line 12: stage``).
    """

    def __init__(self, path, field, message):
        self.path = str(path) if path is not None else '<input>'
        self.field = str(field) if field is not None else ''
        self.message = str(message)
        where = self.path
        if self.field:
            where = '%s: field %s' % (where, self.field)
        super().__init__('%s: %s' % (where, self.message))
