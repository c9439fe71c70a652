"""The AWX execution environment (execution-environment.yml): ansible-builder turns it into
a build context whose Containerfile installs the repository's bindep.txt, Python
requirements and collections. Runs the venv's ansible-builder ``create`` (no network, no
container runtime), then the context's own introspect script, as the build would."""
import os
import re
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")


def _read(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return handle.read()


EE = yaml.safe_load(_read(REPO, "execution-environment.yml"))
DEPS = EE["dependencies"]


def _lines(text):
    """Requirement lines without comments and blanks."""
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    if not os.path.exists(BUILDER):
        pytest.fail("ansible-builder is not in the venv (requirements-dev.txt): %s" % BUILDER)
    out = tmp_path_factory.mktemp("ee-context")
    subprocess.run([BUILDER, "create", "--file", "execution-environment.yml", "--context", str(out),
                    "--output-filename", "Containerfile"], cwd=REPO, check=True, capture_output=True, text=True,
                   timeout=120)
    return out


def test_schema_version_3_with_every_kind_of_dependency():
    assert EE["version"] == 3
    for key in ("python", "system", "galaxy", "ansible_core", "ansible_runner", "python_interpreter"):
        assert key in DEPS, key


def test_the_context_holds_the_containerfile_and_the_repositorys_requirement_files(context):
    assert (context / "Containerfile").is_file()
    for built, source in (("requirements.txt", DEPS["python"]), ("bindep.txt", DEPS["system"]),
                          ("requirements.yml", DEPS["galaxy"])):
        assert (context / "_build" / built).read_text(encoding="utf-8") == _read(REPO, source), source


def test_the_containerfile_installs_the_interpreter_ansible_and_the_collections(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    args = dict(re.findall(r'^ARG (\w+)="(.*)"$', text, re.M))
    assert args["EE_BASE_IMAGE"] == EE["images"]["base_image"]["name"]
    assert args["PYPKG"] == DEPS["python_interpreter"]["package_system"]
    assert args["PYCMD"] == DEPS["python_interpreter"]["python_path"]
    assert args["ANSIBLE_INSTALL_REFS"].split() == [DEPS["ansible_core"]["package_pip"],
                                                    DEPS["ansible_runner"]["package_pip"]]
    assert "$PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in text
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml", text, re.M)
    # The user's pip and bindep files go through introspect into assemble (pip and the package manager).
    assert "COPY _build/requirements.txt requirements.txt" in text
    assert "COPY _build/bindep.txt bindep.txt" in text
    assert re.search(r"introspect\.py introspect --user-pip=requirements\.txt --user-bindep=bindep\.txt", text)
    assert "RUN /output/scripts/assemble" in text
    assert "RUN /output/scripts/install-from-bindep" in text


def test_introspect_hands_every_repository_requirement_to_the_installers(context, tmp_path):
    (tmp_path / "collections" / "ansible_collections").mkdir(parents=True)
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                    str(tmp_path / "collections"), "--user-pip", str(context / "_build" / "requirements.txt"),
                    "--user-bindep", str(context / "_build" / "bindep.txt"), "--write-pip", str(pip_out),
                    "--write-bindep", str(bindep_out)], check=True, capture_output=True, text=True, timeout=60)
    assert _lines(pip_out.read_text()) == _lines(_read(REPO, DEPS["python"]))
    assert _lines(bindep_out.read_text()) == _lines(_read(REPO, DEPS["system"]))
