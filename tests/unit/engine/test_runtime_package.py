"""The runtime package's rule: standard library and siblings only, shipped as a whole.

Its files run as the package (``runtime.tree()`` on ``PYTHONPATH``) in a pod on a stock
Python image and beside the controller's watchdog; one import of anything else breaks
the dead-man's switch there, not here.
"""

import ast
import json
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
# The directory the collection is imported from here: never where the shipped tree runs from.
COLLECTIONS_DIR = os.path.abspath(os.path.join(PACKAGE_DIR, *[os.pardir] * (PACKAGE.count(".") + 1)))
# Optional, imported under ``except ImportError`` with a fallback: PyYAML for a YAML kubeconfig.
OPTIONAL = {"k8s_rest.py": {"yaml"}}


def _imports(tree):
    """(module, line) of every import anywhere in the file (try/except, functions)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "line %d: import siblings by their collection path" % node.lineno
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
    return top in OPTIONAL.get(filename, ())


def _guarded_imports(tree):
    """(module, line) of the imports under a ``try`` that catches ImportError."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        catches = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            catches.update(getattr(t, "id", None) for t in types)
        if catches & {"ImportError", "ModuleNotFoundError"}:
            for stmt in node.body:
                yield from _imports(stmt)


@pytest.mark.parametrize("filename", sorted(os.listdir(PACKAGE_DIR)))
def test_runtime_files_import_only_the_standard_library_and_siblings(filename):
    if not filename.endswith(".py"):
        pytest.skip("not a module")
    with open(os.path.join(PACKAGE_DIR, filename), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename)
    bad = ["line %d: %s" % (line, module) for module, line in _imports(tree)
           if not _allowed(module, filename)]
    assert not bad, "%s runs in a pod on a stock Python image: %s" % (filename, ", ".join(bad))
    # It runs as the package everywhere: siblings are imported plainly, never with a
    # fallback (only the optional imports may fail).
    guarded = ["line %d: %s" % (line, module) for module, line in _guarded_imports(tree)
               if module.split(".")[0] not in OPTIONAL.get(filename, ())]
    assert not guarded, "%s: import fallbacks: %s" % (filename, ", ".join(guarded))
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and node.attr == "path" and getattr(node.value, "id", None) == "sys"], \
        "%s touches sys.path" % filename


def test_sources_are_the_package_files():
    expected = {}
    for name in sorted(os.listdir(PACKAGE_DIR)):
        if name.endswith(".py"):
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


def test_tree_is_the_package_under_a_path_entry():
    tree = runtime.tree()
    parts = PACKAGE.split(".")
    base = "/".join(parts)
    parents = {"/".join(parts[:depth] + ["__init__.py"]) for depth in range(1, len(parts))}
    assert len(parents) == 5
    assert {path: text for path, text in tree.items() if path in parents} == dict.fromkeys(parents, "")
    assert {path[len(base) + 1:]: text for path, text in tree.items() if path.startswith(base + "/")} \
        == runtime.sources()
    assert len(tree) == len(parents) + len(runtime.sources())


def _write_tree(directory):
    for relpath, text in runtime.tree().items():
        path = directory.joinpath(*relpath.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("entry, option", [("restore", "--state-configmap"), ("watchdog", "--pid")])
def test_the_shipped_tree_runs_as_the_package(tmp_path, entry, option):
    """What the pod and the watchdog do: ``tree()`` in a directory first on PYTHONPATH,
    ``python3 -m`` from elsewhere. The repository's collection is on the path too, behind
    it: the shipped files win, every one of them."""
    shipped, elsewhere = tmp_path / "shipped", tmp_path / "elsewhere"
    _write_tree(shipped)
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(elsewhere), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(shipped), COLLECTIONS_DIR])}
    module = "%s.%s" % (PACKAGE, entry)
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=str(elsewhere), env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert option in done.stdout
    check = ("import json, sys\nimport %s\n"
             "print(json.dumps({name: getattr(mod, '__file__', None) for name, mod in sys.modules.items()"
             " if name.split('.')[0] in ('ansible', 'ansible_collections')}))\n" % module)
    done = subprocess.run([sys.executable, "-c", check], cwd=str(elsewhere), env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    origins = json.loads(done.stdout)
    assert module in origins and PACKAGE + ".k8s_rest" in origins
    assert "ansible" not in origins, "ansible-core imported"
    outside = {name: path for name, path in origins.items()
               if not (path or "").startswith(str(shipped) + os.sep)}
    assert not outside, "imported from outside the shipped tree: %s" % outside
    assert not list(shipped.rglob("__pycache__")), "the pod's mount is read-only"


def test_op_types_derive_from_the_registry():
    assert set(fault_handlers.OP_TYPES) == set(op_types.OP_TYPES)
    assert set(catalog.ROLLBACK_OPS) == {name for name, op in op_types.OP_TYPES.items() if op.rollback}
    for name, op_type in op_types.OP_TYPES.items():
        assert op_type.name == name
