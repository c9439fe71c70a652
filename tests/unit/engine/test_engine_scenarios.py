"""Scenario records: validated like faults, the one owner of a scenario's facts."""
import copy
import os

import pytest
import yaml

from ansible_collections.opsdrill.drills.plugins.module_utils import catalog, detect
from ansible_collections.opsdrill.drills.plugins.module_utils.catalog import Catalog, CatalogError
from ansible_collections.opsdrill.drills.plugins.module_utils.catalog.scenario_record import alert_rule

HERE = os.path.dirname(os.path.abspath(__file__))
TEAM_FILE = os.path.join(HERE, "..", "..", "integration", "drills", "catalogs", "latency_spike.yml")
SEEDS = os.path.join(HERE, "..", "..", "..", "..", "shared", "seeds")


def _team():
    with open(TEAM_FILE) as handle:
        return yaml.safe_load(handle)


def test_the_collection_has_the_two_seed_scenarios_with_their_alerts():
    faults = catalog.load()
    assert faults.scenario_ids() == ["error_spike", "outage"]
    assert faults.alerts() == ["HighErrorRate", "ServiceDown"]
    assert faults.scenario("outage")["variants"] == ["configuration", "resources", "dependencies"]
    # Every fault raises its scenario's alert, and names one of its variants.
    for entry in faults.entries():
        record = faults.scenario(entry["scenario"])
        assert entry["alert"] == record["alert"]["name"]
        assert entry["variant"] in record["variants"]


def test_expected_actions_are_the_seeds_own(request):
    """The checklist phases and items are the seed documents' Expected Actions, word for word."""
    seeds = {"outage": "service-outage-scenario.md", "error_spike": "error-spike-scenario.md"}
    for scenario, name in seeds.items():
        path = os.path.join(SEEDS, name)
        if not os.path.exists(path):
            path = os.path.join("/work/shared/seeds", name)
        with open(path) as handle:
            text = handle.read()
        record = catalog.load().scenario(scenario)
        for phase in record["expected_actions"]["phases"]:
            assert phase["title"] in text, (scenario, phase["title"])
            for item in phase["items"]:
                assert item["title"] in text, (scenario, item["title"])


def test_a_team_file_adds_a_scenario_and_its_faults():
    faults = Catalog.from_data(_team(), "team.yml")
    assert faults.scenario_ids() == ["error_spike", "latency_spike", "outage"]
    assert faults.keys("latency_spike") == ["latency_spike/code/slow_release",
                                            "latency_spike/dependencies/slow_backend"]
    assert "HighLatency" in faults.alerts()
    # The record's `for` against an override, in seconds (the engine waits the difference).
    assert faults.alert_for_s("latency_spike") == 15
    assert faults.alert_for_s("latency_spike", {"HighLatency": "2m"}) == 120


def test_unknown_scenario_lists_the_valid_ones_team_scenarios_included():
    faults = Catalog.from_data(_team(), "team.yml")
    with pytest.raises(CatalogError, match="unknown scenario 'latency'; scenarios: error_spike, latency_spike, outage"):
        faults.lookup("latency", "code", "slow_release")
    with pytest.raises(CatalogError, match="unknown variant 'resources' for scenario latency_spike; variants: code, dependencies"):
        faults.pick("latency_spike", "resources", seed=1)


def _broken(change):
    data = _team()
    change(data["scenarios"][0])
    return data


@pytest.mark.parametrize("change, field, text", [
    (lambda r: r.pop("alert"), "alert", "missing"),
    (lambda r: r["alert"].update(expr="up > ${treshold}"), "alert.expr", "unknown placeholder(s) ${treshold}"),
    (lambda r: r["alert"].update(**{"for": "soon"}), "alert.for", "must be a duration"),
    (lambda r: r["alert"].update(expr={"operator": "up == 0"}), "alert.expr", "needs a default"),
    (lambda r: r.update(variants=[]), "variants", "must be a non-empty list"),
    (lambda r: r.update(colour="red"), "(scenario)", "unknown field(s) colour"),
    (lambda r: r["expected_actions"]["phases"][0]["items"][0]["match"].update(window="lunch"),
     "expected_actions.phases[0].items[0].match.window", ""),
    (lambda r: r.update(id="Latency Spike"), "id", "must be snake_case"),
])
def test_invalid_records_name_the_file_scenario_and_field(change, field, text):
    with pytest.raises(CatalogError) as info:
        Catalog.from_data(_broken(change), "team.yml")
    message = str(info.value)
    assert "team.yml: scenario #1" in message and ("field %s: %s" % (field, text)) in message, message


def test_a_scenario_defined_twice_is_refused():
    data = _team()
    data["scenarios"][0]["id"] = "outage"
    data["faults"] = []
    with pytest.raises(CatalogError, match="scenario outage is defined twice"):
        Catalog.from_data(data, "team.yml")


def test_a_fault_must_raise_its_scenarios_alert():
    data = _team()
    data["faults"][0]["alert"] = "ServiceDown"
    with pytest.raises(CatalogError, match="'ServiceDown' not allowed; allowed: HighLatency"):
        Catalog.from_data(data, "team.yml")


def test_alert_rules_fill_the_placeholders_and_pick_the_mode():
    outage = catalog.load().scenario("outage")
    standalone = alert_rule(outage, "team-a", "standalone")
    operator = alert_rule(outage, "team-a", "operator", for_overrides={"ServiceDown": "2m"})
    assert standalone["expr"] == 'max(up{namespace="team-a", job="reachability", service="backend-api"}) == 0'
    assert operator["expr"].startswith('(count(up{namespace="team-a", job="backend-api"')
    assert (standalone["for"], operator["for"]) == ("30s", "2m")
    assert operator["annotations"]["description"] == "backend-api has not answered through its Service for 2m."
    assert standalone["labels"] == {"severity": "critical", "service": "backend-api", "namespace": "team-a"}
    spike = alert_rule(catalog.load().scenario("error_spike"), "t", rate_window="5m", threshold_overrides={"HighErrorRate": 0.3})
    assert "[5m]" in spike["expr"] and "> 0.3)" in spike["expr"] and "${" not in spike["expr"]
    assert spike["annotations"]["summary"] == "api-gateway error rate above 30%"
    # Prometheus' own templating is left for Prometheus.
    assert spike["annotations"]["description"].startswith("{{ $value | humanizePercentage }}")


class _PromView:
    namespace = "team-a"

    def __init__(self, value):
        self.value, self.queries = value, []

    def prom(self, query):
        self.queries.append(query)
        return self.value


def test_promql_detect_fills_the_namespace_and_compares():
    spec = {"type": "promql", "query": 'max(x{namespace="${namespace}"})', "above": 0.5}
    view = _PromView(0.7)
    met, detail = detect.evaluate(spec, view)
    assert met and view.queries == ['max(x{namespace="team-a"})'] and detail["value"] == 0.7
    assert detect.evaluate(spec, _PromView(0.5)) == (False, None)
    assert detect.evaluate(spec, _PromView(None)) == (False, None)


def test_promql_detect_needs_a_number():
    data = copy.deepcopy(_team())
    data["faults"][0]["symptom"]["detect"]["above"] = "high"
    with pytest.raises(CatalogError, match="symptom.detect.above: must be a number"):
        Catalog.from_data(data, "team.yml")


def test_monitoring_renders_every_records_rule_and_refuses_unknown_overrides():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.opsdrill.drills.plugins.filter.scenario_alert_rules import (
        scenario_alert_names, scenario_alert_rules)
    rules = scenario_alert_rules([TEAM_FILE], "team-a", alert_for={"HighLatency": "1m"})
    assert [r["alert"] for r in rules] == ["HighErrorRate", "HighLatency", "ServiceDown"]
    assert [r["for"] for r in rules] == ["30s", "1m", "30s"]
    assert scenario_alert_names([]) == ["HighErrorRate", "ServiceDown"]
    with pytest.raises(AnsibleFilterError, match="monitoring_alert_for: no scenario raises HighLatency; "
                                                 "seed alerts: HighErrorRate, ServiceDown"):
        scenario_alert_rules([], "team-a", alert_for={"HighLatency": "1m"})


def test_steady_state_services_come_from_the_records():
    from ansible_collections.opsdrill.drills.plugins.filter.scenario_alert_rules import scenario_services
    seeds = ["api-gateway", "backend-api", "frontend", "worker"]
    assert catalog.load().services("outage") == seeds
    assert scenario_services([]) == seeds
    data = _team()
    data["scenarios"][0]["services"] = ["api-gateway", "rank-api"]
    assert Catalog.from_data(data, "team.yml").services() == seeds + ["rank-api"]
    assert Catalog.from_data(data, "team.yml").services("latency_spike") == ["api-gateway", "rank-api"]
