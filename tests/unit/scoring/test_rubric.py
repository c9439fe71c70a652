"""Rubric data: default rubric, team rubrics, validation errors."""

import copy
import os
import re

import pytest
import yaml

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import ScoringInputError, load_rubric, rubric_from_data
from ansible_collections.opsdrill.drills.plugins.module_utils.scoring.rubric import DEFAULT_RUBRIC_PATH
from ansible_collections.opsdrill.drills.plugins.plugin_utils.rubric_action import rubric_argument

from .conftest import REPO, crit, fx, score

SEEDS = [os.path.join(REPO, '..', 'shared', 'seeds'), '/work/shared/seeds']


def _seed_dir():
    for path in SEEDS:
        if os.path.isdir(path):
            return path
    return None


def _seed_section(text, heading):
    """Lines under '## heading' up to the next '## '."""
    match = re.search(r'^## %s\n(.*?)(?=^## |\Z)' % re.escape(heading), text, re.S | re.M)
    return match.group(1) if match else ''


def _default_data():
    """The default rubric as the action plugin hands it to a module."""
    return rubric_argument()['data']


def test_one_copy_of_the_rubric_the_yaml():
    """No Python literal mirrors rubrics/default.yml: the data a module gets is the file's."""
    with open(DEFAULT_RUBRIC_PATH) as handle:
        from_yaml = yaml.safe_load(handle)
    data = _default_data()
    assert data['criteria'] == from_yaml['criteria'] and data['groups'] == from_yaml['groups']
    scoring_dir = os.path.dirname(DEFAULT_RUBRIC_PATH)
    for name in os.listdir(os.path.join(scoring_dir, '..')):
        if name.endswith('.py'):
            with open(os.path.join(scoring_dir, '..', name)) as handle:
                assert 'technical.service_recovery' not in handle.read(), name


def test_default_rubric_loads_and_adds_up():
    rubric = load_rubric()
    assert [g['id'] for g in rubric.groups] == ['technical', 'process', 'documentation']
    assert sum(c.points for c in rubric.criteria) == 100
    for group in ('technical', 'process', 'documentation'):
        assert len([c for c in rubric.criteria if c.group == group]) >= 4
    assert set(rubric.checklists) == {'outage', 'error_spike'}


def test_module_side_needs_no_file(monkeypatch):
    """In an AnsiballZ payload there is no default.yml: a module builds its rubric from the
    data the action read, without a file."""
    import builtins
    data = _default_data()

    def no_files(*args, **kwargs):
        raise AssertionError('a module must not read rubric files: %r' % (args,))
    monkeypatch.setattr(builtins, 'open', no_files)
    rubric = rubric_from_data(data, 'default')
    assert rubric.origin == 'default'
    assert len(rubric.criteria) == len(data['criteria'])
    assert set(rubric.checklists) == {'outage', 'error_spike'}


@pytest.mark.skipif(_seed_dir() is None, reason='seed scenarios (shared/seeds) not found beside the repo')
@pytest.mark.parametrize('seed, scenario', [('service-outage-scenario.md', 'outage'),
                                            ('error-spike-scenario.md', 'error_spike')])
def test_checklist_covers_every_seed_expected_action(seed, scenario):
    with open(os.path.join(_seed_dir(), seed)) as handle:
        text = handle.read()
    expected = re.findall(r'^- \[ \] (.+)$', _seed_section(text, 'Expected Actions'), re.M)
    assert len(expected) == 16
    rubric = load_rubric()
    titles = [item['title'] for phase in rubric.checklists[scenario]['phases'] for item in phase['items']]
    assert titles == expected
    phases = re.findall(r'^### \d+\. (.+)$', _seed_section(text, 'Expected Actions'), re.M)
    assert [p['title'] for p in rubric.checklists[scenario]['phases']] == phases


@pytest.mark.skipif(_seed_dir() is None, reason='seed scenarios (shared/seeds) not found beside the repo')
@pytest.mark.parametrize('seed, scenario', [('service-outage-scenario.md', 'outage'),
                                            ('error-spike-scenario.md', 'error_spike')])
def test_rubric_covers_seed_evaluation_criteria_and_followup(seed, scenario):
    with open(os.path.join(_seed_dir(), seed)) as handle:
        text = handle.read()
    rubric = load_rubric()
    titles = ' / '.join(c.for_scenario(scenario)[0].lower() for c in rubric.criteria)
    for item in re.findall(r'^- (.+)$', _seed_section(text, 'Evaluation Criteria'), re.M):
        assert item.lower() in titles, item
    follow = _seed_section(text, 'Follow-up')
    review = re.findall(r'^- (.+)$', follow.split('### Improvements')[0], re.M)
    assert rubric.followup[scenario]['review'] == review
    actions = re.findall(r'^\d+\. (.+)$', follow, re.M)
    assert rubric.followup[scenario]['action_items'] == actions


def test_team_rubric_extends_default():
    rubric = load_rubric(fx('rubric-team.yml'))
    ids = [c.id for c in rubric.criteria]
    assert 'documentation.postmortem' not in ids
    assert 'process.briefing_quality' in ids
    assert rubric.pass_percent == 80
    assert rubric.targets['time_to_recover_s'] == 600
    assert rubric.targets['time_to_acknowledge_s'] == 300  # kept from the default
    recovery = [c for c in rubric.criteria if c.id == 'technical.service_recovery'][0]
    assert recovery.points == 20


def test_team_rubric_scores_differently():
    sc = score(rubric_file=fx('rubric-team.yml'))
    rec = crit(sc, 'technical.service_recovery')
    # recovered after 8:30: within the strict 10:00 band (0.5), not the 5:00 one
    assert rec['points'] == 10 and rec['points_max'] == 20
    brief = crit(sc, 'process.briefing_quality')
    assert brief['status'] == 'not_assessed' and 'trainer mark' in brief['reason']
    assert sc['rubric']['name'] == 'team blue rubric'
    assert sc['metrics']['time_to_recover']['target_s'] == 600


@pytest.mark.parametrize('name, field', [
    ('rubric-bad-points.yml', 'criteria[1] (technical.log_analysis).points'),
    ('rubric-bad-match.yml', 'criteria[0] (process.communication).params.steps[0].match.after'),
    ('rubric-bad-yaml.txt', 'line 3 column 7'),
])
def test_malformed_rubric_files(name, field):
    with pytest.raises(ScoringInputError) as info:
        load_rubric(fx(name))
    assert info.value.path.endswith(name)
    assert info.value.field == field
    assert name in str(info.value) and field in str(info.value)


def _mutated(change):
    data = copy.deepcopy(_default_data())
    change(data)
    return data


@pytest.mark.parametrize('change, field', [
    (lambda d: d.update(schema=2), 'schema'),
    (lambda d: d.update(pass_percent=120), 'pass_percent'),
    (lambda d: d['criteria'][0].update(method='vibes'), 'criteria[0] (technical.service_recovery).method'),
    (lambda d: d['criteria'][0].update(group='nope'), 'criteria[0] (technical.service_recovery).group'),
    (lambda d: d['criteria'][0]['params']['bands'][0].update(ratio=2), 'criteria[0] (technical.service_recovery).params.bands[0].ratio'),
    (lambda d: d['criteria'][0]['params']['bands'].reverse(), 'criteria[0] (technical.service_recovery).params.bands[0].within_s'),
    (lambda d: d['criteria'][4]['params']['levels'].pop('no_fix'), 'criteria[4] (technical.problem_solving).params.levels.no_fix'),
    # the copy lands after the default's 14 criteria
    (lambda d: d['criteria'].append(dict(d['criteria'][0])), 'criteria[14] (technical.service_recovery).id'),
    (lambda d: d['criteria'][1]['params']['steps'][0]['match'].update(kinds=['x']),
     'criteria[1] (technical.error_analysis).params.steps[0].match'),
    (lambda d: d['criteria'][2]['scenario_params']['error_spike']['steps'][0].update(weight='heavy'),
     'criteria[2] (technical.log_analysis).scenario_params.error_spike.steps[0].weight'),
    (lambda d: d['checklists']['outage']['phases'][0]['items'][0]['match'].update(window='lunch'),
     'checklists.outage.phases[0].items[0].match.window'),
    (lambda d: d['criteria'][0].update(colour='red'), 'criteria[0] (technical.service_recovery).colour'),
])
def test_rubric_validation_names_field(change, field):
    with pytest.raises(ScoringInputError) as info:
        rubric_from_data(_mutated(change), 'team.yml')
    assert info.value.field == field
    assert info.value.path == 'team.yml'


def test_extends_errors():
    with pytest.raises(ScoringInputError) as info:
        rubric_from_data({'extends': 'default', 'disable': ['technical.nope']}, 'team.yml')
    assert info.value.field == 'disable[0]'
    with pytest.raises(ScoringInputError) as info:
        rubric_from_data({'extends': 'other'}, 'team.yml')
    assert info.value.field == 'extends'


def test_scenario_specific_titles_and_params():
    rubric = load_rubric()
    logs = [c for c in rubric.criteria if c.id == 'technical.log_analysis'][0]
    dummy, outage = logs.for_scenario('outage')
    dummy, spike = logs.for_scenario('error_spike')
    assert [s['id'] for s in outage['steps']] == ['logs', 'previous']
    assert [s['id'] for s in spike['steps']] == ['logs', 'verify_logs']
    rec = [c for c in rubric.criteria if c.id == 'technical.service_recovery'][0]
    assert rec.for_scenario('error_spike')[0] != rec.for_scenario('outage')[0]
