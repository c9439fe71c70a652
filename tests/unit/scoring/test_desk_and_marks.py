"""Incident desk entries and trainer marks: parsing, schemas, errors."""

import json
import shutil

import jsonschema
import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import (
    DESK_KINDS, DeskSource, EvidenceSource, ScoringInputError, load_marks, parse_marks)
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.desk import parse_desk_entries

from .conftest import crit, fx, load_schema, score


def test_desk_fixture_items():
    items = DeskSource(path=fx('desk-full.json')).collect()
    assert [i.action for i in items][:3] == ['acknowledge', 'incident_log', 'status_update']
    assert all(i.source == 'desk' and i.actor == 'trainee-1' for i in items)
    assert items[0].ref == 'desk-full.json[0]'


def test_desk_source_is_an_evidence_source():
    assert issubclass(DeskSource, EvidenceSource)
    assert not DeskSource(path=fx('no-such-desk.json')).available
    with pytest.raises(TypeError):
        EvidenceSource()  # pylint: disable=abstract-class-instantiated


@pytest.mark.parametrize('name', ['desk-full.json', 'desk-two-trainees.json'])
def test_good_desk_files_match_schema(name):
    with open(fx(name)) as handle:
        jsonschema.validate(json.load(handle), load_schema('desk.schema.json'))


@pytest.mark.parametrize('name', ['desk-bad-kind.json'])
def test_bad_desk_files_fail_schema(name):
    with open(fx(name)) as handle:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.load(handle), load_schema('desk.schema.json'))


def test_schema_kinds_match_code():
    schema = load_schema('desk.schema.json')
    assert tuple(schema['items']['properties']['kind']['enum']) == DESK_KINDS


@pytest.mark.parametrize('name, field, words', [
    ('desk-bad-kind.json', '[1].kind', 'must be one of'),
    ('desk-bad-ts.json', '[0].ts', 'ISO 8601'),
])
def test_bad_desk_file_errors(name, field, words):
    with pytest.raises(ScoringInputError) as info:
        DeskSource(path=fx(name)).collect()
    assert info.value.field == field
    assert info.value.path.endswith(name)
    assert words in info.value.message


@pytest.mark.parametrize('entries, field', [
    ({'not': 'a list'}, '(top level)'),
    (['x'], '[0]'),
    ([{'ts': '2026-11-22T17:30:00Z', 'author': 'a', 'kind': 'status_update'}], '[0].text'),
    ([{'ts': '2026-11-22T17:30:00Z', 'author': ' ', 'kind': 'status_update', 'text': 'x'}], '[0].author'),
    ([{'ts': '2026-11-22T17:30:00Z', 'author': 'a', 'kind': 'status_update', 'text': 5}], '[0].text'),
])
def test_desk_entry_errors(entries, field):
    with pytest.raises(ScoringInputError) as info:
        parse_desk_entries(entries, 'desk.json')
    assert info.value.field == field


def test_desk_not_json(tmp_path):
    path = tmp_path / 'desk.json'
    path.write_text('[{"ts": ')
    with pytest.raises(ScoringInputError) as info:
        DeskSource(path=str(path)).collect()
    assert info.value.path == str(path)


def test_empty_desk_text_does_not_count():
    entries = [{'ts': '2026-11-22T17:34:00Z', 'author': 'trainee-1', 'kind': 'status_update', 'text': '   '}]
    sc = score(desk=None, desk_entries=entries)
    comm = crit(sc, 'process.communication')
    assert comm['status'] == 'fail' and comm['points'] == 0


def _artifacts(tmp_path, desk=None):
    shutil.copy(fx('timeline-recovered.jsonl'), str(tmp_path / 'timeline.jsonl'))
    if desk:
        shutil.copy(fx(desk), str(tmp_path / 'desk.json'))
    return str(tmp_path)


def _sources(sc):
    return dict((s['name'], s) for s in sc['sources'])


def test_desk_json_in_the_artifacts_dir_is_read_by_default(tmp_path):
    # The drill engine passes no desk_file by default: the team's desk.json next to the timeline counts.
    sc = score(timeline=None, desk=None, artifacts_dir=_artifacts(tmp_path, 'desk-full.json'))
    desk = _sources(sc)['desk']
    assert desk['available'] and desk['items'] > 0 and desk['label'].endswith('desk.json')
    assert crit(sc, 'process.communication')['status'] != 'not_assessed'
    assert crit(sc, 'documentation.recovery_steps')['status'] != 'not_assessed'


def test_no_desk_json_leaves_the_desk_not_assessed(tmp_path):
    sc = score(timeline=None, desk=None, artifacts_dir=_artifacts(tmp_path))
    desk = _sources(sc)['desk']
    assert not desk['available'] and 'desk.json' in desk['note']
    assert crit(sc, 'process.communication')['status'] == 'not_assessed'


def test_a_given_desk_file_wins_over_desk_json(tmp_path):
    artifacts = _artifacts(tmp_path, 'desk-full.json')
    sc = score(timeline=None, desk='desk-two-trainees.json', artifacts_dir=artifacts)
    assert _sources(sc)['desk']['label'] == fx('desk-two-trainees.json')
    # A named file that is missing is reported as such, never replaced by desk.json.
    missing = str(tmp_path / 'elsewhere.json')
    sc = score(timeline=None, desk=None, desk_file=missing, artifacts_dir=artifacts)
    desk = _sources(sc)['desk']
    assert not desk['available'] and missing in desk['note']
    assert crit(sc, 'process.communication')['status'] == 'not_assessed'


# Trainer marks -------------------------------------------------------------------
def test_marks_file_and_var_merge():
    marks = load_marks(fx('marks-good.yml'), {'documentation.postmortem': {'pass': False, 'note': 'redo'}})
    assert marks['documentation.postmortem'].passed is False  # the var wins
    assert marks['process.coordination'].passed is True
    assert marks['outage.investigation.analyze_metrics'].note.startswith('Looked')


def test_marks_schema_accepts_fixture():
    import yaml
    with open(fx('marks-good.yml')) as handle:
        jsonschema.validate(yaml.safe_load(handle), load_schema('trainer-marks.schema.json'))


@pytest.mark.parametrize('data, field', [
    ({'x': {'score': -1}}, 'x.score'),
    ({'x': {'score': 'ten'}}, 'x.score'),
    ({'x': {'pass': 'yes'}}, 'x.pass'),
    ({'x': {'note': 'only a note'}}, 'x'),
    ({'x': {'score': 1, 'pass': True}}, 'x'),
    ({'x': {'grade': 'A'}}, 'x.grade'),
    ({'x': {'result': 'maybe'}}, 'x.result'),
    ({'x': {'pass': True, 'note': 5}}, 'x.note'),
    (['x'], '(top level)'),
])
def test_mark_errors(data, field):
    with pytest.raises(ScoringInputError) as info:
        parse_marks(data, 'marks.yml')
    assert info.value.field == field
    assert info.value.path == 'marks.yml'


def test_mark_score_above_points_names_file_and_field():
    with pytest.raises(ScoringInputError) as info:
        score(trainer_marks_file=fx('marks-bad-score.yml'))
    assert info.value.path.endswith('marks-bad-score.yml')
    assert info.value.field == 'technical.service_recovery.score'
    assert 'only 10 points' in info.value.message


def test_mark_for_unknown_criterion():
    with pytest.raises(ScoringInputError) as info:
        score(trainer_marks_file=fx('marks-unknown-criterion.yml'))
    assert info.value.field == 'process.heroics'
    assert info.value.path.endswith('marks-unknown-criterion.yml')


def test_mark_bad_field_fixture():
    with pytest.raises(ScoringInputError) as info:
        score(trainer_marks_file=fx('marks-bad-field.yml'))
    assert info.value.field == 'process.response_time.pass'


def test_marks_override_and_keep_automatic_result():
    plain = score()
    marked = score(trainer_marks_file=fx('marks-good.yml'))
    pm = crit(marked, 'documentation.postmortem')
    assert pm['points'] == 6 and pm['trainer_mark']['score'] == 6
    assert pm['auto']['points'] == crit(plain, 'documentation.postmortem')['points']
    assert pm['evidence'][0]['source'] == 'trainer'
    assert pm['status'] == 'pass'  # 6 of 8 is above the 60 % pass mark
    coord = crit(marked, 'process.coordination')
    assert coord['points'] == coord['points_max']
    item = None
    for phase in marked['checklist']['phases']:
        for it in phase['items']:
            if it['id'] == 'outage.investigation.analyze_metrics':
                item = it
    assert item['status'] == 'done' and item['trainer_mark']['pass'] is True


def test_mark_makes_a_not_assessed_criterion_assessed():
    sc = score(desk=None, trainer_marks={'process.communication': {'score': 4, 'note': 'watched the call'}})
    comm = crit(sc, 'process.communication')
    assert comm['status'] == 'fail' and comm['points'] == 4
    assert comm['auto']['status'] == 'not_assessed'
    assert crit(sc, 'documentation.incident_record')['status'] == 'not_assessed'
