"""Every catalog fault, for real: the symptom shows within its documented time, the seed
alert fires, and after the rollback every touched object equals its snapshot and the
steady state is back. Seen from the cluster and Prometheus (kubectl), not only from the
drill's own report.

    pytest tests/integration/drills -k memory_limits
    OPSDRILL_DRILL_PARALLEL=3 pytest tests/integration/drills/test_faults.py
"""
import pytest

import drill_runner

pytestmark = pytest.mark.drill

KEYS = drill_runner.fault_keys()
# The monitor polls kubectl every 2 s, one check takes a few seconds: it may see the
# symptom a little after the drill did.
MONITOR_SLACK_S = 15


def _tail(path, lines=40):
    try:
        with open(path) as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _timing_problem(result):
    """Why the symptom or the alert did not show as documented, or None."""
    if result.rc != 0 and result.verify == "verify_passed" and not result.differences:
        return "drill failed before the rollback: %s" % result.failure
    if result.symptom_engine_s is None or result.symptom_engine_s > result.symptom_within_s:
        return "the drill saw the symptom after %s s (documented: %s s)" % (result.symptom_engine_s, result.symptom_within_s)
    if result.symptom_s is None or result.symptom_s > result.symptom_within_s + MONITOR_SLACK_S:
        return "kubectl/Prometheus showed the symptom after %s s (documented: %s s)" % (result.symptom_s, result.symptom_within_s)
    if result.alert_s is None or result.alert_s > result.alert_within_s + MONITOR_SLACK_S:
        return "Prometheus showed the seed alert firing after %s s (documented: %s s)" % (result.alert_s, result.alert_within_s)
    # An alert cannot fire sooner than its rule's `for:` after the fault began: one that did
    # was already pending before the injection, and is not the drill's.
    if result.alert_for_s is None or result.alert_s < result.alert_for_s:
        return "Prometheus showed the seed alert firing %s s after the injection, sooner than its for: (%s s)" % (
            result.alert_s, result.alert_for_s)
    return None


@pytest.mark.parametrize("key", KEYS, ids=[k.replace("/", "-") for k in KEYS])
def test_fault(drill_pool, key):
    result = drill_pool.result(key, timeout=3600)
    assert result is not None, "the drill of %s did not finish within an hour" % key
    context = "%s in %s (drill %s, log %s)" % (key, result.namespace, result.drill_id, result.log)
    # Never leave a cluster broken: these hold for every fault, stable or not.
    assert result.verify == "verify_passed", "%s: %s" % (context, result.verify)
    assert result.differences == [], "%s: objects differ from their snapshot after the rollback:\n  %s" % (
        context, "\n  ".join(result.differences))
    assert result.leftovers == [], "%s: left behind: %s" % (context, ", ".join(result.leftovers))
    assert result.steady_problems == [], "%s: no steady state after the rollback: %s" % (
        context, "; ".join(result.steady_problems))
    assert result.deploy_repo == [], "%s: deploy repository: %s" % (context, "; ".join(result.deploy_repo))
    problem = _timing_problem(result)
    assert result.rc == 0, "%s: ansible-playbook failed: %s\n%s" % (context, result.failure, _tail(result.log))
    assert problem is None, "%s: %s" % (context, problem)
    # No action (the window is 0, nobody works the drill): the cluster's fix state shows
    # the fault's change in place; the API server's audit log (read here) shows no trainee
    # request in the namespace during the drill; no fix credit and no recovery credit.
    events = {e["event"]: e for e in result.events}
    assert "fix_state" in events, "%s: no fix_state in the timeline" % context
    faulted = [o for o in events["fix_state"]["data"]["objects"] if o["faulted"]]
    assert faulted and all(o["verdict"] == "in_place" for o in faulted), (context, faulted)
    assert drill_runner.trainee_requests(result) == [], context
    card = drill_runner.scorecard(result)
    fix = card["fix_assessment"]
    assert fix["level"] == "no_fix" and fix["cause_fixes"] == [] and fix["symptom_fixes"] == [], (context, fix)
    points = {c["id"]: c["points"] for c in card["criteria"]}
    assert points["technical.problem_solving"] == 0 and points["technical.service_recovery"] == 0, (context, points)
    assert card["totals"]["result"] != "pass", (context, card["totals"])
