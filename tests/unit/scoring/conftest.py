"""Helpers for the scoring tests: fixture paths and a scorecard factory."""

import json
import os
import tempfile

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import build_scorecard, load_rubric

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, 'fixtures')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SCHEMAS = os.path.join(REPO, 'plugins', 'module_utils', 'scoring', 'schemas')
# The real fault catalog: a scorecard picks the drill's entry from it (never a hand-written copy).
CATALOG = os.path.join(REPO, 'plugins', 'module_utils', 'catalog', 'faults.yml')
RECORDED = os.path.join(FIXTURES, 'recorded')


def fx(name):
    return os.path.join(FIXTURES, name)


def load_schema(name):
    with open(os.path.join(SCHEMAS, name), 'r', encoding='utf-8') as handle:
        return json.load(handle)


def edited_timeline(tmp_path, edit, name='timeline-recovered.jsonl'):
    """A copy of a fixture timeline with ``edit(event)`` applied to every event (in place);
    returns its path."""
    lines = []
    with open(fx(name)) as handle:
        for line in handle:
            event = json.loads(line)
            edit(event)
            lines.append(json.dumps(event))
    path = tmp_path / 'timeline.jsonl'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def desk_counts_rubric():
    """The default rubric with a desk file's points counted (``self_reported.max_points``
    100): the tests of the desk's matching use it; the default (0) is test_recorded.py's."""
    path = os.path.join(tempfile.gettempdir(), 'opsdrill-rubric-desk-counts-%d.json' % os.getpid())
    if not os.path.exists(path):
        data = load_rubric().data
        data = dict(data, self_reported={'max_points': 100})
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(data, handle)
    return path


def score(timeline='timeline-recovered.jsonl', audit='audit-recovered.log', desk='desk-full.json',
          catalog=CATALOG, **kw):
    """Score fixture files; pass None to leave a source out. The desk file counts
    (desk_counts_rubric) unless ``rubric_file`` says otherwise."""
    kw.setdefault('rubric_file', desk_counts_rubric())
    args = dict(
        timeline_file=fx(timeline) if timeline else None,
        audit_log=fx(audit) if audit else None,
        desk_file=fx(desk) if desk else None,
        catalog_entry_file=(catalog if os.path.isabs(catalog) else fx(catalog)) if catalog else None,
    )
    args.update(kw)
    scorecard, dummy = build_scorecard(**args)
    return scorecard


def crit(scorecard, cid):
    for c in scorecard['criteria']:
        if c['id'] == cid:
            return c
    raise KeyError(cid)


def check_item(scorecard, item_id):
    for phase in scorecard['checklist']['phases']:
        for item in phase['items']:
            if item['id'] == item_id:
                return item
    raise KeyError(item_id)


@pytest.fixture
def scorecard_schema():
    return load_schema('scorecard.schema.json')
