"""The AWX survey of the drill job template (plugins/module_utils/awx_survey.py, filter
opsdrill.drills.awx_survey_spec): its choices are the catalog's, its variables, limits and
default answers the drill playbook's. Expected values are read here from the catalog, the
inputs file and the roles' argument specs with yaml."""
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.opsdrill.drills.plugins.filter.awx_survey_spec import awx_survey_spec
from ansible_collections.opsdrill.drills.plugins.module_utils import awx_survey, catalog

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TEAM_FILE = os.path.join(REPO, "tests", "integration", "drills", "catalogs", "latency_spike.yml")


def _yaml(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


INPUTS = _yaml("playbooks", "vars", "inputs.yml")
DRILL_OPTIONS = INPUTS["opsdrill_inputs_playbooks"]["drill"]["options"]
LIMITS = INPUTS["opsdrill_inputs_limits"]
RECORDS = _yaml("plugins", "module_utils", "catalog", "scenarios.yml")["scenarios"]
FAULTS = _yaml("plugins", "module_utils", "catalog", "faults.yml")
FAULTS = FAULTS["faults"] if isinstance(FAULTS, dict) else FAULTS


def _spec(paths=(), **kwargs):
    return awx_survey_spec(list(paths), **kwargs)


def _role_default(playbook, variable):
    """The default of a playbook variable: its own, else that of the role variable it forwards to."""
    spec = INPUTS["opsdrill_inputs_playbooks"][playbook]
    option = spec["options"][variable]
    if "default" in option or "forwards" not in option:
        return option.get("default")
    for role in spec["roles"]:
        for entry in _yaml("roles", role, "meta", "argument_specs.yml")["argument_specs"].values():
            if option["forwards"] in entry.get("options", {}):
                return entry["options"][option["forwards"]].get("default")
    raise AssertionError("%s forwards to an unknown variable" % variable)


def _questions(spec):
    return {q["variable"]: q for q in spec["spec"]}


def test_the_questions_are_the_drill_playbooks_command_line_variables():
    questions = _questions(_spec())
    assert set(questions) == {"scenario", "variant", "fault", "drill_namespace", "response_window_s", "drill_seed"}
    assert set(questions) <= set(DRILL_OPTIONS)


def test_choices_come_from_the_catalog_files():
    questions = _questions(_spec())
    assert sorted(questions["scenario"]["choices"]) == sorted(r["id"] for r in RECORDS)
    variants = [v for r in RECORDS for v in r["variants"]]
    assert sorted(questions["variant"]["choices"]) == sorted(set(variants))
    assert sorted(questions["fault"]["choices"]) == sorted({f["name"] for f in FAULTS})
    for question in questions.values():
        choices = question.get("choices", [])
        assert len(choices) == len(set(choices)), question["variable"]


def test_a_team_catalog_adds_its_scenario_variants_and_faults():
    team = _yaml(TEAM_FILE)
    questions = _questions(_spec([TEAM_FILE]))
    for record in team["scenarios"]:
        assert record["id"] in questions["scenario"]["choices"]
        assert set(record["variants"]) <= set(questions["variant"]["choices"])
    assert {f["name"] for f in team["faults"]} <= set(questions["fault"]["choices"])


def test_numbers_are_bounded_by_the_drills_own_limits():
    questions = _questions(_spec())
    for variable in ("response_window_s", "drill_seed"):
        limit = LIMITS[DRILL_OPTIONS[variable]["forwards"]]
        assert questions[variable]["type"] == "integer"
        assert (questions[variable]["min"], questions[variable]["max"]) == (limit["min"], limit["max"])


def test_variant_and_fault_may_be_left_empty_so_the_drill_picks():
    questions = _questions(_spec())
    for variable in ("variant", "fault"):
        assert questions[variable]["type"] == "multiplechoice"
        assert questions[variable]["required"] is False
        assert questions[variable]["default"] == ""


def test_other_questions_are_required_and_default_to_the_playbooks_defaults():
    questions = _questions(_spec())
    for variable in ("scenario", "drill_namespace", "response_window_s", "drill_seed"):
        assert questions[variable]["required"] is True
        assert questions[variable]["default"] == _role_default("drill", variable)
    for playbook in ("setup", "rollback", "teardown"):
        (question,) = _spec(playbook=playbook, variables=["drill_namespace"])["spec"]
        assert question["default"] == _role_default(playbook, "drill_namespace")


def test_defaults_are_answers_and_must_be_choices():
    scenario = RECORDS[-1]["id"]
    questions = _questions(_spec(defaults={"scenario": scenario, "drill_namespace": "team-a", "response_window_s": 900}))
    assert questions["scenario"]["default"] == scenario
    assert questions["drill_namespace"]["default"] == "team-a"
    assert questions["response_window_s"]["default"] == 900
    with pytest.raises(AnsibleFilterError, match="default scenario='nope' is not a choice"):
        _spec(defaults={"scenario": "nope"})


def test_a_subset_keeps_the_survey_order():
    spec = _spec(variables=["drill_namespace", "scenario"])
    assert [q["variable"] for q in spec["spec"]] == ["scenario", "drill_namespace"]


def test_a_question_the_playbook_does_not_take_is_refused():
    with pytest.raises(AnsibleFilterError, match="scenario: not a variable of the playbook"):
        _spec(playbook="setup", variables=["scenario", "drill_namespace"])
    with pytest.raises(AnsibleFilterError, match="playbook must be one of"):
        _spec(playbook="nope")
    with pytest.raises(awx_survey.SurveyError, match="no survey question for target"):
        awx_survey.survey_spec(catalog.load(), variables=["target"])
    with pytest.raises(AnsibleFilterError, match="no survey question for fault"):
        _spec(variables=["scenario"], defaults={"fault": "x"})


def test_an_invalid_catalog_file_fails_the_filter(tmp_path):
    broken = tmp_path / "team.yml"
    broken.write_text("scenarios: [{id: x}]\n")
    with pytest.raises(AnsibleFilterError, match="invalid catalog"):
        _spec([str(broken)])
