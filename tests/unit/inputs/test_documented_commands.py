"""Every command line in the README and docs/drills.md works as written: the playbook or
make target exists, and every -e variable, make variable and test stage is one the
product accepts (checked with the same validation the playbooks run). The two drill
commands of the design card also run on the lab, exactly as written
(tests/integration/drills/test_documented_commands.py)."""
import os
import re
import shlex

import pytest
import yaml

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import inputs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOCS = ("README.md", os.path.join("docs", "drills.md"))
SPEC = yaml.safe_load(open(os.path.join(REPO, "playbooks", "vars", "inputs.yml")))
# A placeholder in the docs (NAME, N, NS, ...) stands for any valid value.
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$")


def commands():
    """(doc, command) for each ansible-playbook or make command line in the docs."""
    found = []
    for doc in DOCS:
        text = open(os.path.join(REPO, doc), encoding="utf-8").read()
        text = text.replace("\\\n", " ")
        in_block = False
        for line in text.splitlines():
            if line.startswith("```"):
                in_block = not in_block
                continue
            pieces = [line] if in_block else re.findall(r"`([^`]+)`", line)
            for piece in pieces:
                piece = piece.split("#", 1)[0].replace("\\|", "|").strip().rstrip("&").strip()
                if re.search(r"(^|\s)(ansible-playbook|make)\s+\S", piece) and not piece.startswith("make help"):
                    found.append((doc, piece))
    return found


COMMANDS = commands()


def _roles(names):
    return {r: inputs.role_options(yaml.safe_load(open(os.path.join(REPO, "roles", r, "meta", "argument_specs.yml"))))
            for r in names}


def _accept_any_file(_name, _value):
    return None


def check_playbook(argv):
    playbook = argv[argv.index("ansible-playbook") + 1]
    if playbook.startswith("opsdrill.drills."):
        playbook = os.path.join("playbooks", playbook.split(".")[-1] + ".yml")
    assert os.path.isfile(os.path.join(REPO, playbook)), playbook
    name = os.path.basename(playbook)[:-4].replace("-", "_")
    scenario = {"drill_outage": "outage", "drill_error_spike": "error_spike"}.get(name)
    spec = SPEC["opsdrill_inputs_playbooks"]["drill" if scenario else name]
    roles = _roles(spec["roles"])
    options = inputs.playbook_options(spec, roles)
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-e"]
    alternatives = [dict(p.split("=", 1) for p in pairs)]
    for key, value in list(alternatives[0].items()):
        if "|" in value:  # lab_state=present|absent
            alternatives = [dict(a, **{key: v}) for a in alternatives for v in value.split("|")]
    for extra in alternatives:
        values, problems = inputs.validate_extra_vars(
            {k: v for k, v in extra.items() if not PLACEHOLDER.match(v)}, options, roles,
            SPEC["opsdrill_inputs_limits"], playbook, {c: _accept_any_file for c in inputs.file_checks()})
        unknown = [k for k, v in extra.items() if PLACEHOLDER.match(v) and k not in options]
        assert problems == [] and unknown == [], (problems, unknown)
        if scenario and values.get("fault"):
            catalog.lookup(scenario, values.get("variant") or None, values["fault"])
        elif scenario:
            catalog.load().check_names(scenario, values.get("variant") or None)


def check_make(argv):
    makefile = open(os.path.join(REPO, "Makefile"), encoding="utf-8").read()
    target_index = argv.index("make") + 1
    targets = [a for a in argv[target_index:] if "=" not in a]
    for target in targets:
        assert re.search(r"^%s:" % re.escape(target), makefile, re.M), "no make target %s" % target
    variables = dict(a.split("=", 1) for a in argv if "=" in a)
    stages = open(os.path.join(REPO, "scripts", "run_tests.sh"), encoding="utf-8").read()
    known_stages = re.search(r'stages=\$\{OPSDRILL_TEST_STAGES:-([^}]*)\}', stages).group(1).split()
    for stage in variables.get("OPSDRILL_TEST_STAGES", "").split():
        assert stage in known_stages, stage
    if "SCENARIO" in variables:
        assert os.path.isfile(os.path.join(REPO, "drill-%s.yml" % variables["SCENARIO"]))
        scenario = variables["SCENARIO"].replace("-", "_")
        catalog.load().check_names(scenario, variables.get("VARIANT"))
    for name in variables:
        assert name.startswith("OPSDRILL_") or re.search(r"^%s \?=" % name, makefile, re.M), \
            "make variable %s is not one the Makefile takes" % name


def test_the_docs_have_commands():
    texts = [c for _d, c in COMMANDS]
    assert "ansible-playbook drill-outage.yml -e variant=resources" in texts
    assert "ansible-playbook drill-error-spike.yml -e variant=code" in texts
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("doc, command", COMMANDS, ids=["%s: %s" % c for c in COMMANDS])
def test_documented_command_is_accepted(doc, command):
    argv = shlex.split(command)
    argv = argv[1:] if argv[0] == "sudo" else argv
    if "ansible-playbook" in argv:
        check_playbook(argv)
    else:
        check_make(argv)
