"""Helpers for the scoring tests: fixture paths and a scorecard factory."""

import json
import os

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import build_scorecard

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, 'fixtures')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SCHEMAS = os.path.join(REPO, 'plugins', 'module_utils', 'scoring', 'schemas')


def fx(name):
    return os.path.join(FIXTURES, name)


def load_schema(name):
    with open(os.path.join(SCHEMAS, name), 'r', encoding='utf-8') as handle:
        return json.load(handle)


def score(timeline='timeline-recovered.jsonl', audit='audit-recovered.log', desk='desk-full.json',
          catalog='catalog-memory-limits.yml', **kw):
    """Score fixture files; pass None to leave a source out."""
    args = dict(
        timeline_file=fx(timeline) if timeline else None,
        audit_log=fx(audit) if audit else None,
        desk_file=fx(desk) if desk else None,
        catalog_entry_file=fx(catalog) if catalog else None,
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
