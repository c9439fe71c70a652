"""The incident desk in a real drill, driven through Debian's Chromium (Selenium and
chromium-driver), checked against what the desk stored, the audit log and the reports.

outage/resources/memory_limits in a drill pool namespace (or a new one). Two trainees log in
with their own Kubernetes tokens and see ServiceDown arrive on the desk; trainee-1
acknowledges and takes incident commander, trainee-2 posts a status update for users, a log
entry with a <script> in it and, after trainee-1's ``kubectl rollout undo``, the fix. The
desk's pod is deleted half-way. The trainer marks the post-mortem's quality; trainee-1
writes the post-mortem with two action items, which ends the drill's post-mortem wait.
Refused, each asserted: an unauthenticated post, a post claiming another author, posts
before the drill opened and after it closed.

    pytest tests/integration/drills/test_incident_desk.py -s
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import drill_runner
from desk_http import DeskHttp, token_of
from kubectl import Kube

pytestmark = pytest.mark.drill

KEY = "outage/resources/memory_limits"
RESPONSE_WINDOW_S = 240
RECOVERY_HOLD_S = 15
POSTMORTEM_WINDOW_S = 300
SCRIPT = "<script>window.pwned=1</script>"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# The desk's clock and the test's are this host's: a stored time falls between the test's
# clock before the click and after the page came back, give or take this.
SLACK_S = 1.0


def say(message):
    print(time.strftime("%H:%M:%S ") + "[desk test] " + message, flush=True)


def epoch(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class Person:
    """One person at the desk: their own Chromium (own profile, own session)."""

    def __init__(self, name, kubeconfig, desk, shots):
        self.name, self.desk, self.shots = name, desk, shots
        self.token = token_of(kubeconfig)
        self.profile = tempfile.mkdtemp(prefix="opsdrill-desk-%s-" % name)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-proxy-server", "--window-size=1280,1600", "--user-data-dir=" + self.profile):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)

    def open(self, path):
        self.driver.get(self.desk.url + path)

    def login(self):
        self.open("/login")
        self.driver.find_element(By.ID, "login-token").send_keys(self.token)
        self.click("login-submit")
        assert self.driver.find_elements(By.ID, "nav-user"), self.driver.page_source[:2000]
        assert self.driver.find_element(By.ID, "nav-user").text == self.name

    def click(self, element_id):
        """Click and wait for the next page (the forms POST and redirect)."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.find(element_id).click()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                old.tag_name  # pylint: disable=pointless-statement
            except WebDriverException:
                return
            time.sleep(0.1)
        raise AssertionError("%s: no new page after clicking %s" % (self.name, element_id))

    def find(self, element_id):
        found = self.driver.find_elements(By.ID, element_id)
        page = self.driver.find_element(By.TAG_NAME, "body").text[:3000]
        assert found, "%s: no #%s on %s:\n%s" % (self.name, element_id, self.driver.current_url, page)
        return found[0]

    def type(self, element_id, text):
        field = self.find(element_id)
        field.clear()
        field.send_keys(text)

    def post(self, form_field, text, button, **selects):
        """Fill a form, click, and return (clicked_at, answered_at) by this host's clock."""
        for select_id, value in selects.items():
            Select(self.find(select_id)).select_by_value(value)
        if form_field:
            self.type(form_field, text)
        before = time.time()
        self.click(button)
        after = time.time()
        errors = self.driver.find_elements(By.ID, "error-message")
        assert not errors, "%s: %s refused: %s" % (self.name, button, errors[0].text)
        return before, after

    def shot(self, name):
        path = self.shots / ("%s-%s.png" % (self.name, name))
        self.driver.save_screenshot(str(path))
        return path

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def desk_namespace(lab, admin, drill_output):
    """A drill pool namespace once the pool is done (setup.yml deployed its desk), or a new one."""
    import conftest  # the drills' conftest: the pool, when test_faults ran before
    pool = conftest._POOL.get("pool")  # pylint: disable=protected-access
    if pool is not None:
        pool.wait()
        ready = [n for n in pool.namespaces if pool.setup_rc.get(n, 0) == 0]
        assert ready, "no drill pool namespace is set up"
        yield ready[-1]
        return
    conftest.release_guard_namespace(lab, admin)
    namespaces, fresh = drill_runner.namespaces_for(1, lab, say)
    assert drill_runner.setup_namespace(namespaces[0], drill_output, say) == 0, "setup.yml failed"
    yield namespaces[0]
    if fresh and os.environ.get("OPSDRILL_DRILL_KEEP_NAMESPACES") != "1":
        drill_runner.delete_namespace(lab, namespaces[0])


def test_desk_in_a_real_drill(lab, admin, desk_namespace, drill_output):
    namespace = desk_namespace
    desk = DeskHttp(lab, admin, namespace)
    shots = drill_output / "desk"
    shots.mkdir(exist_ok=True)
    trainees = lab["trainee_kubeconfigs"]
    trainer_name, trainer_kubeconfig = sorted(lab["trainer_kubeconfigs"].items())[0]
    runner = drill_runner.DrillRunner(KEY, namespace, lab, drill_output, response_window_s=RESPONSE_WINDOW_S,
                                      extra_vars={"recovery_hold_s": RECOVERY_HOLD_S,
                                                  "postmortem_window_s": POSTMORTEM_WINDOW_S}, log=say)
    drill_id = runner.drill_id
    entries_path = "/api/drills/%s/entries" % drill_id
    one, two = (Person(name, trainees[name], desk, shots) for name in ("trainee-1", "trainee-2"))
    trainer = None
    outcome, clicks, measured = {}, {}, {}

    def drill():
        try:
            outcome["result"] = runner.run()
        except Exception as exc:  # reported below, never a hung thread
            outcome["error"] = repr(exc)

    drill_thread = threading.Thread(target=drill, daemon=True, name="drill-desk")

    def wait(what, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            if not drill_thread.is_alive() and "result" in outcome or "error" in outcome:
                break
            time.sleep(0.5)
        pytest.fail("%s: not within %d s (drill %s: %s)" % (what, timeout, drill_id, outcome))

    try:
        one.login()
        two.login()
        # Refused before the drill exists: no entry outside the drill's window.
        status, answer = desk.call("POST", entries_path, two.token, {"kind": "log", "text": "early"})
        assert status == 409, (status, answer)

        drill_thread.start()
        wait("the drill open on the desk",
             lambda: (desk.drill(drill_id, one.token) or {}).get("state") == "open", 300)
        for person in (one, two):
            person.open("/drills/%s" % drill_id)
        # The page arrives live (the feed polls the desk): no reload.
        wait("ServiceDown on trainee-2's desk", lambda: two.driver.find_elements(
            By.CSS_SELECTOR, "#feed li.entry[data-kind=alert]"), runner.entry["alert_within_s"] + 90)
        measured["page_seen"] = time.time()
        alerts = [r for r in desk.records(drill_id, one.token) if r["kind"] == "alert"]
        firing = [a for a in alerts if a.get("status", (a.get("data") or {}).get("status")) == "firing"] or alerts
        say("alert on the desk: %s" % json.dumps(firing[0])[:400])
        for person in (one, two):
            person.open("/drills/%s" % drill_id)
            pages = [p.text for p in person.driver.find_elements(By.CSS_SELECTOR, "pre.alert-page")]
            assert any(p.startswith("[ALERT] ServiceDown") and "Service: backend-api" in p for p in pages), pages
        one.shot("alert")
        # The team briefing: the situation and how to reach things, not the answer.
        two.open("/drills/%s/briefing" % drill_id)
        briefing = two.driver.find_element(By.ID, "briefing").text
        assert "completely unreachable" in briefing and "Prometheus" in briefing, briefing
        assert "memory" not in briefing.lower(), briefing
        two.open("/drills/%s" % drill_id)

        clicks["acknowledge"] = one.post(None, None, "ack-button")
        clicks["role"] = one.post(None, None, "role-submit", **{"role-select": "incident_commander"})
        clicks["status_update"] = two.post("status-text", "SEO tool backend down for users; next update in 10 min",
                                           "status-submit", **{"status-audience": "users"})
        clicks["log"] = two.post("log-text", "backend-api OOMKilled " + SCRIPT, "log-submit")

        # Refused: nobody, and somebody claiming to be somebody else.
        assert desk.call("POST", entries_path, None, {"kind": "log", "text": "anonymous"})[0] == 401
        status, answer = desk.call("POST", entries_path, two.token,
                                   {"kind": "log", "text": "I am trainee-1", "author": "trainee-1"})
        assert status == 403 and "author" in json.dumps(answer), (status, answer)
        status, answer = desk.call("POST", entries_path, two.token,
                                   {"kind": "log", "text": "back-dated", "ts": "2026-01-01T00:00:00Z"})
        assert status == 400, (status, answer)
        # A page forged with a trainee's own token: only Alertmanager holds the webhook's.
        forged = {"version": "4", "status": "resolved", "alerts": [{"status": "resolved", "labels": {
            "alertname": "ServiceDown", "namespace": namespace}, "annotations": {}, "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T00:01:00Z", "fingerprint": "forged"}]}
        assert desk.call("POST", "/api/alertmanager", two.token, forged)[0] in (401, 403)

        # The desk's pod goes away mid-drill; no entry may go with it.
        before = {r["id"] for r in desk.records(drill_id, one.token)}
        old_pod = desk.pod()[0]["metadata"]["name"]
        admin.run("delete", "pod", old_pod, "-n", desk.home, "--wait=false")
        # Until the old pod is gone it may still answer (and keep a new session).
        wait("a new desk pod serving, the old one gone", lambda: admin.run(
            "get", "pod", old_pod, "-n", desk.home, check=False).returncode != 0 and any(
            all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}]) for p in desk.pod())
            and desk.call("GET", "/healthz")[0] == 200, 120)
        after = {r["id"] for r in desk.records(drill_id, one.token)}
        assert before <= after, "entries lost with the desk's pod: %s" % sorted(before - after)

        # The fix, with trainee-1's own kubeconfig (the audit log names the same user).
        Kube(lab["kubectl"], trainees["trainee-1"]).run("rollout", "undo", "deployment/backend-api", "-n", namespace)
        measured["fix_at"] = time.time()
        for person in (one, two):
            person.login()  # the restart ended the sessions (they live in the pod)
        two.open("/drills/%s" % drill_id)
        clicks["fix"] = two.post("fix-text", "kubectl rollout undo deployment/backend-api (memory limit restored)",
                                 "fix-submit")
        two.shot("feed")

        wait("the drill closed on the desk", lambda: (desk.drill(drill_id, one.token) or {}).get("state") == "closed",
             RESPONSE_WINDOW_S + 120)
        status, answer = desk.call("POST", entries_path, two.token, {"kind": "status_update", "audience": "team",
                                                                     "text": "late"})
        assert status == 409 and "outside the drill window" in json.dumps(answer), (status, answer)

        trainer = Person(trainer_name, trainer_kubeconfig, desk, shots)
        trainer.login()
        trainer.open("/drills/%s/trainer" % drill_id)
        assert "memory" in trainer.driver.find_element(By.ID, "fault").text.lower()
        # Trainees never get the answer key.
        one.open("/drills/%s/trainer" % drill_id)
        assert one.driver.find_elements(By.ID, "error-message") and not one.driver.find_elements(By.ID, "fault")
        assert "fault" not in (desk.drill(drill_id, one.token) or {"fault": "no answer"}), "trainee sees the fault"
        clicks["mark"] = trainer.post("mark-score", "2", "mark-submit",
                                      **{"mark-target": "documentation.postmortem_quality"})

        one.open("/drills/%s" % drill_id)
        fields = one.driver.find_elements(By.CSS_SELECTOR, "#pm-form textarea[id^=pm-review-], "
                                                           "#pm-form textarea[id^=pm-improvement-]")
        assert len(fields) >= 8, "the post-mortem editor lacks the Follow-up headings"
        for field in fields:
            field.send_keys("Answered by the team for " + field.get_attribute("id"))
        for n, (title, owner) in enumerate((("Alert on OOMKilled before users notice", "trainee-1"),
                                            ("Memory limits reviewed with the service owner", "trainee-2")), 1):
            one.type("pm-action-title-%d" % n, title)
            one.type("pm-action-owner-%d" % n, owner)
        one.type("pm-summary", "Memory limit cut below the working set; rolled back.")
        one.shot("postmortem")
        clicks["postmortem"] = one.post(None, None, "pm-submit")

        drill_thread.join(timeout=POSTMORTEM_WINDOW_S + 300)
        assert not drill_thread.is_alive(), "the drill did not end"
        assert "error" not in outcome, outcome["error"]
        result = outcome["result"]
        assert result.rc == 0 and result.verify == "verify_passed", (result.failure, result.log[-3000:])

        records = desk.records(drill_id, trainer.token)
        # On the page the <script> is text, and it never ran.
        one.open("/drills/%s" % drill_id)
        texts = [e.text for e in one.driver.find_elements(By.CSS_SELECTOR, "#feed li.entry")]
        assert any(SCRIPT in t for t in texts), texts
        assert one.driver.execute_script("return window.pwned === undefined")
        assert SCRIPT not in one.driver.page_source.replace("&lt;", "<x") and "&lt;script&gt;" in one.driver.page_source
        trainer.open("/")
        assert trainer.driver.find_elements(By.CSS_SELECTOR, "table.history"), "no drill history for the trainer"
        trainer.shot("history")
    finally:
        for person in (one, two, trainer):
            if person is not None:
                person.quit()

    # The terminal client reads the same feed with trainee-2's kubeconfig.
    cli = subprocess.run([sys.executable, str(drill_runner.REPO / "roles" / "incident_desk" / "files" / "desk_cli.py"),
                          "--url", desk.url, "--kubeconfig", trainees["trainee-2"], "feed", drill_id],
                         capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 0, cli.stderr
    assert any(" trainee-1 acknowledge" in line for line in cli.stdout.splitlines()), cli.stdout

    # What the desk stored: the authenticated author and the desk's time of each click.
    by_kind = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record)
    expected = {"acknowledge": "trainee-1", "role": "trainee-1", "status_update": "trainee-2", "log": "trainee-2",
                "fix": "trainee-2", "mark": trainer_name, "postmortem": "trainee-1"}
    for kind, author in expected.items():
        assert len(by_kind.get(kind, [])) == 1, (kind, by_kind.get(kind))
        record = by_kind[kind][0]
        assert record["author"] == author, record
        clicked, answered = clicks[kind]
        assert clicked - SLACK_S <= epoch(record["ts"]) <= answered + SLACK_S, (kind, record["ts"], clicks[kind])
    assert by_kind["role"][0]["role"] == "incident_commander"
    assert by_kind["status_update"][0]["audience"] == "users"
    owners = [(a["title"], a["owner"]) for a in by_kind["postmortem"][0]["sections"]["action_items"]]
    assert [o for _t, o in owners] == ["trainee-1", "trainee-2"], owners

    # The audit log names trainee-1 for the undo, as the desk does for the acknowledgement.
    requests = drill_runner.trainee_requests(result)
    undo = [e for e in requests if e["verb"] == "patch" and (e.get("objectRef") or {}).get("name") == "backend-api"]
    assert undo and {e["user"]["username"] for e in undo} == {"trainee-1"}, [e["user"] for e in undo]

    # The scorecard: those entries, with the desk's times and authors, witnessed.
    card = drill_runner.scorecard(result)
    sources = {s["name"]: s for s in card["sources"]}
    assert sources["incident_desk"]["available"] and sources["incident_desk"]["trust"] == "witnessed", sources
    desk_events = [e for e in card["events"] if e["source"] == "incident_desk"]
    team_kinds = ("acknowledge", "role", "status_update", "log", "fix", "postmortem")
    team_records = [r for r in records if r["kind"] in team_kinds]
    assert sorted((e["actor"], round(epoch(e["ts"]), 3)) for e in desk_events) == sorted(
        (r["author"], round(epoch(r["ts"]), 3)) for r in team_records), (desk_events, team_records)
    criteria = {c["id"]: c for c in card["criteria"]}
    assert card["totals"]["points_by_source"]["witnessed"] > 0, card["totals"]["points_by_source"]
    assert criteria["documentation.postmortem"]["points"] == criteria["documentation.postmortem"]["points_max"]
    quality = criteria["documentation.postmortem_quality"]
    assert quality["points"] == 2 and quality["trainer_mark"]["by"] == trainer_name, quality
    assert card["metrics"]["time_to_acknowledge"]["seconds"] is not None, card["metrics"]["time_to_acknowledge"]

    # Every report shows the <script> as text.
    artifacts = Path(result.artifacts_dir)
    for report in sorted(artifacts.glob("*")):
        if report.suffix in (".html", ".md", ".xml"):
            assert SCRIPT not in report.read_text(), report.name
    # The reports outlive the controller: archived on the desk, served to the trainer as written.
    archived = [(r.get("data") or {}).get("name") for r in records if r["kind"] == "report"]
    assert len(archived) >= 3, "reports archived on the desk: %s" % archived
    for name in archived:
        status, content = desk.call("GET", "/api/drills/%s/reports/%s" % (drill_id, name), token_of(trainer_kubeconfig))
        assert status == 200, (name, status)
        # The scorecard JSON is data (it keeps the text as written); every page shows it escaped.
        assert isinstance(content, (dict, list)) or SCRIPT not in content, name

    measured["alert_fired"] = epoch(firing[0].get("starts_at") or firing[0].get("startsAt")
                                    or (firing[0].get("data") or {}).get("startsAt"))
    (drill_output / "desk-measurements.json").write_text(json.dumps({
        "alert_fired_to_page_seen_s": round(measured["page_seen"] - measured["alert_fired"], 2),
        "alert_fired_to_desk_stored_s": round(epoch(firing[0]["ts"]) - measured["alert_fired"], 2),
    }, indent=1))
    say("measurements: %s" % (drill_output / "desk-measurements.json").read_text())
