"""Shared setup for all unit tests.

Makes this repository importable the way Ansible imports collection code:
``ansible_collections.opsdrill.drills...``. The repo root is the collection
root, so a temporary ``ansible_collections/opsdrill/drills`` symlink to it is
put first on sys.path. This runs at conftest import, before test modules are
collected, so module-level imports in tests work.
"""

import atexit
import os
import shutil
import sys
import tempfile

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _install_collection_path():
    try:
        import ansible_collections.opsdrill.drills  # noqa: F401  already importable
        return
    except ImportError:
        pass
    base = tempfile.mkdtemp(prefix='opsdrill-collections-')
    namespace = os.path.join(base, 'ansible_collections', 'opsdrill')
    os.makedirs(namespace)
    os.symlink(_REPO_ROOT, os.path.join(namespace, 'drills'))
    atexit.register(shutil.rmtree, base, True)
    sys.path.insert(0, base)
    # ansible_collections may already be imported as a namespace package
    # (from the `ansible` package's bundled collections): extend its path.
    module = sys.modules.get('ansible_collections')
    if module is not None and hasattr(module, '__path__'):
        extra = os.path.join(base, 'ansible_collections')
        try:
            module.__path__.append(extra)
        except AttributeError:
            pass
    os.environ.setdefault('OPSDRILL_TEST_COLLECTIONS_PATH', base)


_install_collection_path()
