"""monitoring_relays: alertmanager.yml.j2 rendered the way the role renders it (Ansible's
template lookup, as standalone.yaml.j2 does) gives the chat receivers next to the desk
webhook, keeps Alertmanager's own template braces, and changes nothing without relays.
Rendering is all that can be checked here: no chat service is reachable from the tests."""
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar

ROLE = Path(__file__).resolve().parents[3] / "roles" / "monitoring"
TEMPLATE = ROLE / "templates" / "alertmanager.yml.j2"
DESK = "http://incident-desk.opsdrill-ctl-seo-tool.svc:8080/api/alertmanager"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"
TEAMS = "https://example.webhook.office.com/webhookb2/abc/IncomingWebhook/def"
MATTERMOST = "https://chat.example.org/hooks/xyz"
TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}"
# The desk-only configuration as the template rendered it before monitoring_relays existed.
BEFORE = """route:
  receiver: drill-webhook
  group_by: [alertname, service]
  group_wait: 5s
  group_interval: 30s
  repeat_interval: 1h
receivers:
  - name: drill-webhook
    webhook_configs:
      - url: "%s"
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials_file: /etc/alertmanager-webhook/webhook}
""" % DESK


def render(**overrides):
    """alertmanager.yml.j2 with the role defaults, a desk webhook and ``overrides``; a
    variable set to None is left out."""
    variables = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables.update(monitoring_webhook_url=DESK, monitoring_webhook_token_secret="incident-desk-webhook")
    variables.update(overrides)
    variables = {k: v for k, v in variables.items() if v is not None}
    variables.update(role_path=str(ROLE), ansible_search_path=[str(ROLE)])
    loader = DataLoader()
    lookup = lookup_loader.get("template", loader=loader, templar=Templar(loader=loader, variables=variables))
    return lookup.run([str(TEMPLATE)], variables=variables)[0]


def _receiver(text):
    config = yaml.safe_load(text)
    assert config["route"]["receiver"] == "drill-webhook"
    assert [r["name"] for r in config["receivers"]] == ["drill-webhook"]
    return config["receivers"][0]


@pytest.fixture(scope="module")
def relayed():
    return render(monitoring_relays=[
        {"type": "slack", "url": SLACK, "channel": "#drills"},
        {"type": "msteams", "url": TEAMS},
    ])


def test_relays_join_the_desk_webhook_in_one_receiver(relayed):
    receiver = _receiver(relayed)
    assert receiver["webhook_configs"][0]["url"] == DESK
    assert receiver["webhook_configs"][0]["http_config"]["authorization"]["type"] == "Bearer"
    assert receiver["slack_configs"] == [{
        "api_url": SLACK, "channel": "#drills", "send_resolved": True, "title": TITLE,
        "text": receiver["slack_configs"][0]["text"]}]
    teams = receiver["msteams_configs"]
    assert len(teams) == 1 and teams[0]["webhook_url"] == TEAMS and teams[0]["send_resolved"] is True
    assert teams[0]["title"] == TITLE
    assert "channel" not in teams[0]


def test_the_page_text_is_alertmanagers_template_untouched_by_jinja(relayed):
    receiver = _receiver(relayed)
    for config in receiver["slack_configs"] + receiver["msteams_configs"]:
        text = config["text"]
        assert text.startswith("{{ range .Alerts -}}") and text.endswith("{{ end }}")
        for line in ("Severity: {{ .Labels.severity }}", "Service: {{ .Labels.service }}",
                     "Summary: {{ .Annotations.summary }}"):
            assert line in text
    assert "{% raw %}" not in relayed and "{% endraw %}" not in relayed


def test_mattermost_is_a_slack_config_with_its_own_url():
    receiver = _receiver(render(monitoring_relays=[{"type": "mattermost", "url": MATTERMOST, "channel": "town-square"},
                                                   {"type": "slack", "url": SLACK, "channel": None}]))
    # a channel left out (None once the argument spec filled it in) is no channel key
    assert [(c["api_url"], c.get("channel", "-")) for c in receiver["slack_configs"]] == [
        (MATTERMOST, "town-square"), (SLACK, "-")]
    assert "msteams_configs" not in receiver


def test_relays_work_without_the_desk_webhook():
    receiver = _receiver(render(monitoring_webhook_url="", monitoring_relays=[{"type": "slack", "url": SLACK}]))
    assert "webhook_configs" not in receiver
    assert receiver["slack_configs"][0]["api_url"] == SLACK


def test_no_relays_renders_what_it_did_before():
    empty = render(monitoring_relays=[])
    assert empty == render(monitoring_relays=None)  # the variable left out
    assert empty == BEFORE
    assert "slack_configs" not in empty and "msteams_configs" not in empty
    assert render(monitoring_relays=[], monitoring_webhook_url="") == render(monitoring_relays=None, monitoring_webhook_url="")
