"""Command-line validation (module_utils/inputs.py) against the real inputs spec, role
argument specs and catalog: what is refused, with which message, and what is passed on."""
import json
import os

import pytest
import yaml

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import inputs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SPEC = yaml.safe_load(open(os.path.join(REPO, "playbooks", "vars", "inputs.yml")))
LIMITS = SPEC["opsdrill_inputs_limits"]


def _roles(names):
    return {r: inputs.role_options(yaml.safe_load(open(os.path.join(REPO, "roles", r, "meta", "argument_specs.yml"))))
            for r in names}


def validate(playbook, extra, checks=None):
    spec = SPEC["opsdrill_inputs_playbooks"][playbook]
    roles = _roles(spec["roles"])
    options = inputs.playbook_options(spec, roles)
    return inputs.validate_extra_vars(extra, options, roles, LIMITS, playbook + ".yml",
                                      inputs.file_checks() if checks is None else checks)


def test_documented_command_gets_typed_defaults():
    values, problems = validate("drill", {"variant": "resources"})
    assert problems == []
    assert values["drill_namespace"] == "seo-tool"
    assert values["response_window_s"] == 600 and values["drill_seed"] == 0
    assert values["variant"] == "resources"


def test_forwarded_defaults_are_the_roles_own():
    roles = _roles(["drill_engine"])
    options = inputs.playbook_options(SPEC["opsdrill_inputs_playbooks"]["drill"], roles)
    for name, spec in options.items():
        if spec.get("forwards"):
            assert spec["default"] == roles["drill_engine"][spec["forwards"]]["default"], name


def test_numbers_from_the_command_line_are_converted():
    values, problems = validate("drill", {"drill_seed": "42", "response_window_s": "0"})
    assert problems == [] and values["drill_seed"] == 42 and values["response_window_s"] == 0


@pytest.mark.parametrize("name, value, text", [
    ("drill_seed", "abc", "drill_seed: 'abc' is not an integer from 0 to 4294967295"),
    ("drill_seed", "-5", "drill_seed: '-5' is out of range; allowed: an integer from 0 to 4294967295"),
    ("drill_seed", True, "drill_seed: True is not an integer"),
    ("response_window_s", "1.5", "response_window_s: '1.5' is not an integer from 0 to 14400"),
    ("response_window_s", "999999999", "response_window_s: '999999999' is out of range"),
    ("response_window_s", "-5", "response_window_s: '-5' is out of range"),
    ("drill_namespace", "Seo_Tool", "drill_namespace: 'Seo_Tool' is not a Kubernetes namespace name"),
    ("target", "deploy/x/y", "target: 'deploy/x/y' is not a workload name or Kind/name"),
    ("drill_id", "../../etc", "drill_id: '../../etc' is not letters, digits"),
    ("opsdrill_trainees", {"a": 1}, "opsdrill_trainees: {'a': 1} is not a list"),
    ("monitoring_alert_for", {"ServiceDown": "soon"}, "monitoring_alert_for: 'soon' is not a duration"),
    ("drill_engine_poll_s", "0", "drill_engine_poll_s: '0' is out of range"),
    ("test_services_traffic_rps", "lots", "test_services_traffic_rps: 'lots' is not"),
])
def test_bad_values_name_the_variable_and_what_is_allowed(name, value, text):
    _values, problems = validate("drill", {name: value})
    assert len(problems) == 1 and problems[0].startswith(text), problems


def test_unknown_variables_are_refused_with_the_closest_name():
    _values, problems = validate("drill", {"varaint": "code", "drill_engine_pol_s": "3"})
    assert problems[0].startswith("drill_engine_pol_s: unknown variable for drill.yml (did you mean drill_engine_poll_s?)")
    assert problems[1].startswith("varaint: unknown variable for drill.yml (did you mean variant?)")
    assert "one" in inputs.message(["one"]) and inputs.message(problems).startswith("2 problems")


def test_the_generic_drill_playbook_takes_a_scenario_and_catalog_files():
    values, problems = validate("drill", {"scenario": "latency_spike", "opsdrill_catalog_paths": []})
    assert problems == [] and values["scenario"] == "latency_spike"


def test_ansible_and_awx_variables_pass():
    _values, problems = validate("drill", {"ansible_python_interpreter": "/usr/bin/python3", "awx_job_id": 7,
                                           "tower_user_name": "admin"})
    assert problems == []


def test_variables_of_roles_a_playbook_does_not_use_are_refused():
    _values, problems = validate("lab", {"drill_engine_poll_s": "3", "lab_state": "absent"})
    assert len(problems) == 1 and problems[0].startswith("drill_engine_poll_s: unknown variable for lab.yml")


def test_lab_choices_and_trainee_names():
    _values, problems = validate("lab", {"lab_state": "maybe", "lab_trainees": ["trainee-1", "x/O=system:masters"]})
    assert problems[0].startswith("lab_state: 'maybe' is not one of: present, absent")
    assert problems[1].startswith("lab_trainees: 'x/O=system:masters' is not a trainee name")


def test_files_missing_too_large_or_invalid(tmp_path):
    big = tmp_path / "big.json"
    big.write_text("[" + " " * (3 * 1024 * 1024) + "]")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    entry = tmp_path / "entry.json"
    entry.write_text(json.dumps([{"ts": "2026-11-22T17:33:05Z", "author": "t", "kind": "no_such_kind", "text": "x"}]))
    good = tmp_path / "desk.json"
    good.write_text("[]")
    for value, text in ((str(tmp_path / "none.json"), "does not exist"), (str(big), "the limit is 2097152 bytes"),
                        (str(bad), "is not valid: not JSON"), (str(entry), "is not valid"),
                        (str(tmp_path), "is not a regular file")):
        _values, problems = validate("drill", {"opsdrill_desk_file": value})
        assert len(problems) == 1 and problems[0].startswith("opsdrill_desk_file: ") and text in problems[0], problems
    values, problems = validate("drill", {"opsdrill_desk_file": str(good)})
    assert problems == [] and values["opsdrill_desk_file"] == str(good)


def test_catalog_files_are_validated(tmp_path):
    broken = tmp_path / "team.yml"
    broken.write_text("- scenario: outage\n  name: x\n")
    _values, problems = validate("drill", {"drill_engine_catalog_paths": [str(broken)]})
    assert len(problems) == 1 and problems[0].startswith("drill_engine_catalog_paths: ") and "team.yml" in problems[0]


def test_artifacts_dir_on_a_pseudo_file_system_or_unwritable(tmp_path):
    mounts = "proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\n"
    assert "proc pseudo file system" in inputs.check_writable_dir("drill_artifacts_base", "/proc/x", mounts)
    assert inputs.check_writable_dir("drill_artifacts_base", str(tmp_path / "a" / "b"), mounts) is None
    (tmp_path / "file").write_text("")
    assert "is a file" in inputs.check_writable_dir("drill_artifacts_base", str(tmp_path / "file" / "x"), mounts)


def test_role_variables_in_scope():
    roles = _roles(["drill_engine"])
    problems = inputs.validate_role_vars("drill_engine", {"drill_engine_seed": -1, "drill_engine_sed": 1,
                                                          "drill_engine_poll_s": 2},
                                         roles["drill_engine"], LIMITS, inputs.file_checks())
    assert problems[0].startswith("drill_engine_sed: unknown variable of role drill_engine (did you mean drill_engine_seed?)")
    assert problems[1].startswith("drill_engine_seed: -1 is out of range")
    assert len(problems) == 2


def test_every_limit_names_a_declared_variable():
    declared = set()
    roles = sorted(name for name in os.listdir(os.path.join(REPO, "roles"))
                   if os.path.isfile(os.path.join(REPO, "roles", name, "meta", "argument_specs.yml")))
    assert "incident_desk" in roles and "drill_engine" in roles
    declared |= set(var for options in _roles(roles).values() for var in options)
    for playbook in SPEC["opsdrill_inputs_playbooks"].values():
        declared |= set(playbook["options"])
    assert set(LIMITS) - declared == set()
    checks = inputs.file_checks()
    assert {limit["check"] for limit in LIMITS.values() if "check" in limit} <= set(checks)


# -- the fault catalog: a fault name alone, and one of the other scenario ---------------

def test_a_fault_name_alone_finds_its_variant():
    entry = catalog.lookup("outage", None, "memory_limits")
    assert entry["variant"] == "resources" and entry["key"] == "outage/resources/memory_limits"


def test_a_fault_of_the_other_scenario_names_scenario_and_playbook():
    with pytest.raises(catalog.CatalogError) as err:
        catalog.lookup("outage", None, "race_conditions")
    assert str(err.value) == ("fault 'race_conditions' belongs to scenario error_spike (error_spike/code/race_conditions), "
                              "not outage: run drill-error-spike.yml -e variant=code -e fault=race_conditions")
    with pytest.raises(catalog.CatalogError, match="run drill-error-spike.yml"):
        catalog.lookup("outage", "resources", "race_conditions")


def test_fault_checks_name_the_variable_of_the_caller():
    from ansible_collections.opsdrill.drills.plugins.action import validate_inputs as action
    assert action._fault_problems("outage", {"variant": "resources", "fault": "memory_limits"}, None) == []
    assert action._fault_problems("outage", {"fault": "memory_limits"}, None) == []
    problems = action._fault_problems("error_spike", {"variant": "dependencies"}, None)
    assert problems == ["variant: unknown variant 'dependencies' for scenario error_spike; "
                        "variants: code, configuration, resources"]
    problems = action._fault_problems("outage", {"drill_engine_variant": "resources", "drill_engine_fault": "x"},
                                      None, prefix="drill_engine_")
    assert problems[0].startswith("drill_engine_fault: no fault 'x' in outage/resources")
    assert action._fault_problems("outage", {"target": "Pod/x"}, None)[0].startswith(
        "target: kind 'Pod' is not one a fault can aim at")
