"""Every role's meta/argument_specs.yml mirrors its defaults/main.yml, and names carry the role prefix."""
from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[3] / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "defaults" / "main.yml").exists())


def _load(role):
    defaults = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = {}
    for entry_point in specs.values():
        options.update(entry_point.get("options", {}))
    return defaults, options


def test_there_are_roles_to_check():
    assert {"lab", "test_services", "monitoring"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_spec_and_defaults_name_the_same_variables(role):
    defaults, options = _load(role)
    assert sorted(set(defaults) - set(options)) == [], "in defaults/main.yml but not in meta/argument_specs.yml"
    assert sorted(set(options) - set(defaults)) == [], "in meta/argument_specs.yml but not in defaults/main.yml"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_role_defaults(role):
    defaults, options = _load(role)
    for name, option in options.items():
        if "default" in option:
            assert option["default"] == defaults[name], f"{role}: {name} default differs"
        else:
            # Only templated defaults may be left out of the spec.
            assert "{{" in str(defaults[name]), f"{role}: {name} has a literal default the spec does not state"


@pytest.mark.parametrize("role", ROLES)
def test_choices_contain_the_default(role):
    defaults, options = _load(role)
    for name, option in options.items():
        if "choices" in option:
            assert defaults[name] in option["choices"], f"{role}: default of {name} is not one of its choices"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults = _load(role)[0]
    prefix = role + "_"
    assert [name for name in defaults if not name.startswith(prefix)] == []
