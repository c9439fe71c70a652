"""The variant roles (variant_code, variant_configuration, ...) are thin public entry points
of roles/variant: each names its variant and declares only what differs; the options they
share are declared once, in roles/variant/vars/main.yml, and resolved there."""
import re
from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[3] / "roles"
SHARED = ROLES_DIR / "variant"
VARIANTS = sorted(p.name[len("variant_"):] for p in ROLES_DIR.glob("variant_*"))


def _yaml(path):
    return yaml.safe_load(path.read_text())


SHARED_VARS = _yaml(SHARED / "vars" / "main.yml")
OPTIONS = SHARED_VARS["__variant_options"]


def _public_options(variant):
    specs = _yaml(ROLES_DIR / ("variant_" + variant) / "meta" / "argument_specs.yml")["argument_specs"]
    assert set(specs) == {"main", "inject", "rollback"}
    options = {}
    for entry_point in specs.values():
        options.update(entry_point.get("options") or {})
    return options


def test_the_four_variants_are_there():
    assert VARIANTS == ["code", "configuration", "dependencies", "resources"]


def test_shared_options_are_complete_specs():
    for name, spec in OPTIONS.items():
        assert spec.get("description") and spec.get("type"), name
        if "choices" in spec:
            assert spec["default"] in spec["choices"], name
        # An option without a shared default is one each variant role must set.
        assert ("default" in spec) != bool(spec.get("required")), name


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_variant_role_declares_only_what_differs(variant):
    prefix = "variant_%s_" % variant
    public = _public_options(variant)
    defaults = _yaml(ROLES_DIR / ("variant_" + variant) / "defaults" / "main.yml")
    # Nothing of its own: each option is a shared one, under the role's prefix ...
    assert {name[len(prefix):] for name in public} <= set(OPTIONS)
    # ... and every option has its default in one place: the shared spec or this role.
    shared_defaults = {prefix + name for name, spec in OPTIONS.items() if "default" in spec}
    assert not shared_defaults & set(defaults)
    assert shared_defaults | set(defaults) == {prefix + name for name in OPTIONS}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("entry_point", ["inject", "rollback"])
def test_a_variant_role_runs_the_shared_flow_naming_its_variant(variant, entry_point):
    tasks = _yaml(ROLES_DIR / ("variant_" + variant) / "tasks" / (entry_point + ".yml"))
    include = tasks[-1]
    assert include["ansible.builtin.include_role"] == {"name": "opsdrill.drills.variant", "tasks_from": entry_point}
    assert include["vars"] == {"variant_name": variant}


@pytest.mark.parametrize("variant", VARIANTS)
def test_main_is_inject(variant):
    tasks = _yaml(ROLES_DIR / ("variant_" + variant) / "tasks" / "main.yml")
    assert [task["ansible.builtin.import_tasks"] for task in tasks] == ["inject.yml"]


def test_every_shared_option_reaches_the_drill_engine():
    forwarded = set()
    for entry_point in ("inject", "rollback"):
        text = (SHARED / "tasks" / (entry_point + ".yml")).read_text()
        forwarded |= set(re.findall(r"__variant_settings\.(\w+)", text))
    assert forwarded == set(OPTIONS)


def test_the_options_table_of_the_shared_readme_is_the_shared_spec():
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", (SHARED / "README.md").read_text(), re.M)
    assert [name for name, _type, _default in rows] == list(OPTIONS)
    for name, _type, default in rows:
        if "default" in OPTIONS[name]:
            assert yaml.safe_load(default.strip().strip("`")) == OPTIONS[name]["default"], name
