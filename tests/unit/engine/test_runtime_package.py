"""The runtime package's rule: standard library and siblings only, shipped as a whole.

Its files run flat in a pod on a stock Python image and beside the controller's
watchdog; one import of anything else breaks the dead-man's switch there, not here.
"""

import ast
import os
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils import runtime
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import ops as op_types
from ansible_collections.opsdrill.drills.plugins.module_utils import catalog
from ansible_collections.opsdrill.drills.plugins.module_utils import fault_handlers

PACKAGE_DIR = os.path.dirname(os.path.abspath(runtime.__file__))
PACKAGE = "ansible_collections.opsdrill.drills.plugins.module_utils.runtime"
SIBLINGS = {name[:-3] for name in os.listdir(PACKAGE_DIR) if name.endswith(".py")} - {"__init__"}
# Optional, imported under ``except ImportError`` with a fallback: PyYAML for a YAML kubeconfig.
OPTIONAL = {"k8s_rest.py": {"yaml"}}


def _imports(tree):
    """(module, line) of every import anywhere in the file (try/except, functions)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "line %d: relative imports do not work flat" % node.lineno
            if node.module == PACKAGE.rsplit(".", 1)[0]:
                # ``from ...module_utils import runtime``: the package itself
                yield from (("%s.%s" % (node.module, a.name), node.lineno) for a in node.names)
            elif node.module == PACKAGE:
                yield from (("%s.%s" % (node.module, a.name), node.lineno) for a in node.names)
            else:
                yield node.module, node.lineno


def _allowed(module, filename):
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    if module == PACKAGE or module.startswith(PACKAGE + "."):
        return module[len(PACKAGE) + 1:].split(".")[0] in SIBLINGS | {""}
    if module in SIBLINGS:  # the flat import, in-cluster
        return True
    return top in OPTIONAL.get(filename, ())


@pytest.mark.parametrize("filename", sorted(os.listdir(PACKAGE_DIR)))
def test_runtime_files_import_only_the_standard_library_and_siblings(filename):
    if not filename.endswith(".py"):
        pytest.skip("not a module")
    with open(os.path.join(PACKAGE_DIR, filename), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename)
    bad = ["line %d: %s" % (line, module) for module, line in _imports(tree)
           if not _allowed(module, filename)]
    assert not bad, "%s runs in a pod on a stock Python image: %s" % (filename, ", ".join(bad))


def test_sources_are_the_package_files():
    expected = {}
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if name.endswith(".py") and name != "__init__.py":
            with open(os.path.join(PACKAGE_DIR, name), encoding="utf-8") as handle:
                expected[name] = handle.read()
    assert runtime.sources() == expected


def test_sources_work_from_a_zip(tmp_path):
    """AnsiballZ runs a module from a zip: the package's files are read through its loader."""
    payload = tmp_path / "payload.zip"
    base = PACKAGE.replace(".", "/")
    with zipfile.ZipFile(payload, "w") as zf:
        parts = base.split("/")
        for depth in range(1, len(parts)):
            zf.writestr("/".join(parts[:depth]) + "/__init__.py", "")
        for name in os.listdir(PACKAGE_DIR):
            if name.endswith(".py"):
                zf.write(os.path.join(PACKAGE_DIR, name), "%s/%s" % (base, name))
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from %s import sources\n"
            "import json; print(json.dumps(sorted(sources())))\n" % (str(payload), PACKAGE))
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '["%s"]' % '", "'.join(sorted(runtime.sources()))


def test_op_types_derive_from_the_registry():
    assert set(fault_handlers.OP_TYPES) == set(op_types.OP_TYPES)
    assert set(catalog.ROLLBACK_OPS) == {name for name, op in op_types.OP_TYPES.items() if op.rollback}
    for name, op_type in op_types.OP_TYPES.items():
        assert op_type.name == name
