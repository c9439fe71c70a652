"""The drill tests: real faults on the lab, several namespaces side by side.

Environment:
  OPSDRILL_DRILL_PARALLEL     namespaces running faults at the same time (default 3)
  OPSDRILL_DRILL_NAMESPACES   comma list of existing namespaces to use instead of creating
                              opsdrill-drill-<n> (they are kept afterwards)
  OPSDRILL_DRILL_KEEP_NAMESPACES=1  keep the created namespaces
  OPSDRILL_REQUIRE_LAB=1      a missing lab fails instead of skipping (CI)

Results: tests/output/drills/<UTC time>/results.jsonl, results.json, results.md.
"""
import json
import os
import time

import pytest

import drill_runner

OUTPUT = drill_runner.REPO / "tests" / "output" / "drills" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
_POOL = {}


def _say(message):
    print(time.strftime("%H:%M:%S ") + message, flush=True)
    with open(OUTPUT / "progress.log", "a") as out:
        out.write(time.strftime("%H:%M:%S ") + message + "\n")


@pytest.fixture(scope="session")
def drill_output():
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


# The namespace the documented commands use when none is given (playbooks/vars/inputs.yml).
DEFAULT_NAMESPACE = "seo-tool"
_GUARD = {}


@pytest.fixture(scope="session")
def guard_namespace(lab, admin, drill_output):
    """The stack in the namespace the docs' commands use (seo-tool, or $OPSDRILL_GUARD_NAMESPACE,
    kept): bad input, the documented commands and the guard tests share it, one module after
    the other. The drill pool removes it (when this fixture created it) before it starts, so
    that its CPU goes to the pool's namespaces."""
    name = os.environ.get("OPSDRILL_GUARD_NAMESPACE", DEFAULT_NAMESPACE)
    existed = admin.run("get", "namespace", name, check=False).returncode == 0
    assert drill_runner.setup_namespace(name, drill_output, _say) == 0, "setup.yml failed for %s" % name
    _GUARD.update(name=name, remove=not existed and "OPSDRILL_GUARD_NAMESPACE" not in os.environ
                  and os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1")
    return name


def release_guard_namespace(lab, admin):
    if _GUARD.pop("remove", False):
        drill_runner.delete_namespace(lab, _GUARD["name"])
        admin.wait_for("namespace %s gone" % _GUARD["name"], lambda: admin.run(
            "get", "namespace", _GUARD["name"], check=False).returncode != 0, timeout=180, interval=2)


@pytest.fixture(scope="session")
def drill_pool(request, lab, admin, drill_output):
    """Starts every selected fault's drill at the first test, spread over the namespaces."""
    release_guard_namespace(lab, admin)
    keys = [item.callspec.params["key"] for item in request.session.items
            if hasattr(item, "callspec") and "key" in item.callspec.params
            and item.originalname == "test_fault"]
    parallel = int(os.environ.get("OPSDRILL_DRILL_PARALLEL", "3"))
    namespaces, created = drill_runner.namespaces_for(min(parallel, max(1, len(keys))), lab, _say)
    _say("drills: %d fault(s) in %d namespace(s): %s" % (len(keys), len(namespaces), ", ".join(namespaces)))
    pool = drill_runner.Pool(keys, namespaces, lab, drill_output, response_window_s=0, log=_say).start()
    _POOL["pool"] = pool
    started = time.time()
    yield pool
    pool.wait()
    results = [pool.results[k] for k in keys if k in pool.results]
    (drill_output / "results.json").write_text(json.dumps(
        {"wall_s": round(time.time() - started, 1), "parallel": len(namespaces),
         "results": [r.row() for r in results]}, indent=1))
    (drill_output / "results.md").write_text(drill_runner.markdown_table(results))
    if created and os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        for namespace in namespaces:
            drill_runner.delete_namespace(lab, namespace)


def pytest_terminal_summary(terminalreporter):
    pool = _POOL.get("pool")
    if not pool or not pool.results:
        return
    terminalreporter.section("opsdrill drills")
    results = [pool.results[k] for k in pool.keys if k in pool.results]
    terminalreporter.write(drill_runner.markdown_table(results))
    terminalreporter.write("results: %s\n" % OUTPUT)
