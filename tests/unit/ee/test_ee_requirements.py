"""The execution environment's Python requirements cover the checkout's (requirements.txt),
by package name; versions are loose there and pinned here. The pinned ``ansible`` package
only carries collections: the EE's galaxy requirements must hold every collection the
collection depends on (galaxy.yml)."""
import os

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as handle:
        return handle.read()


EE = yaml.safe_load(_read("execution-environment.yml"))


def _names(text):
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(canonicalize_name(Requirement(line).name))
    return names


def _ee_names():
    deps = EE["dependencies"]
    pinned_elsewhere = "\n".join(deps[key]["package_pip"] for key in ("ansible_core", "ansible_runner"))
    return _names(_read(deps["python"])) | _names(pinned_elsewhere)


def test_every_package_of_requirements_txt_is_in_the_ee():
    missing = _names(_read("requirements.txt")) - _ee_names() - {"ansible"}
    assert not missing, "requirements.txt packages missing from the EE: %s" % ", ".join(sorted(missing))


def test_the_ansible_packages_collections_come_from_the_ee_galaxy_requirements():
    needed = set(yaml.safe_load(_read("galaxy.yml"))["dependencies"])
    galaxy = yaml.safe_load(_read(EE["dependencies"]["galaxy"]))
    assert needed <= {c["name"] for c in galaxy["collections"]}


def test_ee_requirements_are_loose_ranges_not_pins():
    for line in _read(EE["dependencies"]["python"]).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert not any(spec.operator == "==" for spec in Requirement(line).specifier), line
