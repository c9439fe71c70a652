# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read YAML or JSON data files with errors that name the file."""

from __future__ import annotations

import json
import os

from .errors import ScoringInputError

# Input files (desk, trainer marks, rubric, catalog) are small; anything larger is a mistake
# or an attempt to stall the scorer.
MAX_INPUT_FILE_BYTES = 2 * 1024 * 1024

try:
    import yaml
    HAS_YAML = True
    _LOADER = getattr(yaml, 'CSafeLoader', None) or yaml.SafeLoader
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None
    HAS_YAML = False
    _LOADER = None


def parse_data_text(text, path):
    """Parse YAML (or JSON, which is YAML) text; ``path`` is for errors."""
    if str(path).endswith('.json') or not HAS_YAML:
        try:
            return json.loads(text)
        except ValueError as exc:
            if HAS_YAML or str(path).endswith('.json'):
                raise ScoringInputError(path, '(document)', 'not valid JSON: %s' % exc)
            raise ScoringInputError(path, '(document)', 'PyYAML is not installed, so only JSON can be read: %s' % exc)
    try:
        return yaml.load(text, Loader=_LOADER)  # nosec - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = '(document)'
        if mark is not None:
            where = 'line %d column %d' % (mark.line + 1, mark.column + 1)
        problem = getattr(exc, 'problem', None) or str(exc)
        raise ScoringInputError(path, where, 'not valid YAML: %s' % problem)


def read_input_text(path):
    """The text of an input file: missing or larger than MAX_INPUT_FILE_BYTES -> ScoringInputError."""
    if not path or not os.path.isfile(path):
        raise ScoringInputError(path, '', 'file not found')
    size = os.path.getsize(path)
    if size > MAX_INPUT_FILE_BYTES:
        raise ScoringInputError(path, '', 'file is %d bytes; the limit is %d bytes' % (size, MAX_INPUT_FILE_BYTES))
    with open(path, 'r', encoding='utf-8') as handle:
        return handle.read()


def load_data_file(path):
    """Load a YAML or JSON file; missing or too large -> ScoringInputError."""
    return parse_data_text(read_input_text(path), path)
