"""A team-defined third scenario, in a catalog file under tests, runs on the lab without a
change to any file of the collection: set up with its alert, drilled with a real symptom
and a firing alert, rolled back, verified and scored.

tests/integration/drills/catalogs/latency_spike.yml holds the scenario record (a p99
latency alert on api-gateway, HighLatency) and its two faults. The namespace
opsdrill-team is set up with ``setup.yml -e opsdrill_catalog_paths=[that file]`` and
deleted afterwards (unless OPSDRILL_DRILL_KEEP_NAMESPACES=1). Checked independently of
the engine: the rule as Prometheus loaded it, the p99 as Prometheus computes it, the
ALERTS series, the cluster against the snapshot, and ``git status`` of the collection.

    pytest tests/integration/drills/test_team_scenario.py -s
"""
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import drill_runner

pytestmark = pytest.mark.drill

NAMESPACE = "opsdrill-team"
CATALOG = Path(__file__).resolve().parent / "catalogs" / "latency_spike.yml"
# The code fault leaves a release in the deploy repository; the dependency fault does not.
KEYS = ("latency_spike/code/slow_release", "latency_spike/dependencies/slow_backend")
P99 = ('histogram_quantile(0.99, sum by (le) (rate(seo_http_request_duration_seconds_bucket{namespace="%s", '
       'service="api-gateway", job!="reachability", route!~"/health|/livez|/metrics"}[30s])))')


def say(message):
    print(time.strftime("%H:%M:%S ") + "[team scenario] " + message, flush=True)


def collection_status():
    """Files of the collection that differ from HEAD, and new ones (tests/output is ignored)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(drill_runner.REPO), *args], capture_output=True, text=True,
                              check=True).stdout
    return git("diff", "HEAD", "--name-only") + git("ls-files", "--others", "--exclude-standard")


@pytest.fixture(scope="module")
def team_file():
    with open(CATALOG) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def team_ns(lab, admin, drill_output):
    drill_runner.fresh_namespace(admin, NAMESPACE, drill_output, say,
                                 {"incident_desk": "false", "opsdrill_catalog_paths": [str(CATALOG)]})
    yield NAMESPACE
    if os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        drill_runner.delete_namespace(lab, NAMESPACE)


def prometheus(lab, path, query):
    client = drill_runner.KubectlClient(lab["kubectl"], lab["admin_kubeconfig"])
    view = drill_runner.detect.ClusterView(client, NAMESPACE, "prometheus:9090")
    status, payload = view.prometheus_get(path, query)
    assert status == 200, "Prometheus %s answered %s" % (path, status)
    return payload["data"]


def test_setup_loads_the_team_alert(lab, team_ns, team_file):
    """Prometheus evaluates the record's rule next to the seed alerts, as the file wrote it."""
    record = team_file["scenarios"][0]
    rules = {rule["name"]: rule for group in prometheus(lab, "/api/v1/rules", {"type": "alert"})["groups"]
             for rule in group["rules"]}
    assert {"ServiceDown", "HighErrorRate", "HighLatency"} <= set(rules), sorted(rules)
    rule = rules["HighLatency"]
    # Prometheus prints the query its own way (label matchers sorted): compare the parts.
    query = rule["query"]
    assert query.startswith("histogram_quantile(0.99, sum by (le) (rate(seo_http_request_duration_seconds_bucket{")
    assert 'namespace="%s"' % NAMESPACE in query and '[30s]' in query, query
    assert query.endswith("> %s" % record["alert"]["threshold"]), query
    assert rule["duration"] == 15 and rule["labels"]["severity"] == "warning"
    assert rule["state"] == "inactive", "HighLatency is %s before any fault" % rule["state"]


@pytest.mark.parametrize("key", KEYS)
def test_team_fault_drill(lab, team_ns, team_file, drill_output, key):
    before = collection_status()
    runner = drill_runner.DrillRunner(key, team_ns, lab, drill_output, response_window_s=0, log=say,
                                      catalog_paths=[CATALOG])
    result = runner.run()
    context = "%s (log %s)" % (key, result.log)
    assert result.rc == 0, context
    assert result.verify == "verify_passed", context
    # The symptom and the alert, as this test's monitor saw them in Prometheus.
    assert result.symptom_s is not None, "p99 never passed 0.5 s: %s" % context
    assert result.alert_s is not None, "HighLatency never fired (ALERTS series): %s" % context
    assert not result.differences, "%s: the cluster differs from the snapshot: %s" % (context, result.differences)
    assert not result.leftovers and not result.steady_problems, (result.leftovers, result.steady_problems)
    assert not result.deploy_repo, result.deploy_repo
    # The p99 peaked above the record's threshold during the drill (Prometheus' own range query).
    injected = drill_runner._first(result.events, "fault_injected")["epoch"]
    finished = drill_runner._first(result.events, "rollback_finished")["epoch"]
    window = {"query": P99 % NAMESPACE, "start": "%.3f" % injected, "end": "%.3f" % finished, "step": "2"}
    series = prometheus(lab, "/api/v1/query_range", window)["result"]
    peak = max(float(v) for s in series for _t, v in s["values"] if v not in ("NaN", "+Inf"))
    assert peak > 0.5, "p99 peaked at %.3f s" % peak
    # Scored with the team record's checklist, from its own file.
    card = drill_runner.scorecard(result)
    record = team_file["scenarios"][0]
    assert card["drill"]["scenario"] == "latency_spike"
    assert card["checklist"]["title"] == record["expected_actions"]["title"]
    assert [i["id"] for p in card["checklist"]["phases"] for i in p["items"]] == [
        i["id"] for p in record["expected_actions"]["phases"] for i in p["items"]]
    # No team worked this drill: no item of its checklist may count as done.
    done = [i["id"] for p in card["checklist"]["phases"] for i in p["items"] if i["status"] == "done"]
    assert not done, "checklist items done without a team: %s" % done
    # Nothing of the collection was changed to run it.
    assert collection_status() == before, collection_status()
