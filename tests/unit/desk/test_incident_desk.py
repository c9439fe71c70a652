"""The incident desk server (roles/incident_desk/files/incident_desk.py) and its CLI,
driven over HTTP on 127.0.0.1 with a MemoryStore and a fake TokenReview."""

import http.cookiejar
import importlib.util
import io
import json
import os
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FILES = os.path.join(REPO, 'roles', 'incident_desk', 'files')


def _load(name, path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# the deploy layout: k8s_rest.py next to incident_desk.py
k8s_rest = _load('k8s_rest', os.path.join(REPO, 'plugins', 'module_utils', 'runtime', 'k8s_rest.py'))
desk = _load('incident_desk', os.path.join(FILES, 'incident_desk.py'))
desk_cli = _load('desk_cli', os.path.join(FILES, 'desk_cli.py'))

DRILL = 'seo-tool-20261129T101500Z'
TEAM = ['opsdrill:trainees', 'system:authenticated']
USERS = {
    'tok-t1': ('trainee-1', TEAM),
    'tok-t2': ('trainee-2', TEAM),
    'tok-trainer': ('trainer', ['opsdrill:trainers', 'system:authenticated']),
    'tok-nobody': ('bob', ['system:authenticated']),
}
CONTROLLER = 'ctl-secret'
WEBHOOK = 'hook-secret'
OPEN_BODY = {
    'drill_id': DRILL, 'namespace': 'seo-tool', 'scenario': 'outage', 'variant': 'db-down',
    'title': 'Backend down', 'alert': 'ServiceDown', 'briefing': {'team': 'Users report errors.'},
    'fault': {'action': 'scale postgres to 0', 'secret_hint': 'FAULT-MARKER'},
    'mark_targets': [{'id': 'communication', 'title': 'Communication', 'points': 5}],
    'followup': {'review': ['Response effectiveness', 'Recovery time', 'Communication quality',
                            'Documentation completeness'],
                 'improvements': ['Monitoring'], 'action_items': ['Add a DB alert']},
}


class FakeReviewer:
    def __init__(self, users):
        self.users = users

    def review(self, token):
        return self.users.get(token)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self):
        return self.body.decode('utf-8')

    def json(self):
        return json.loads(self.body)


class Server:
    def __init__(self, tmp_path, store=None, max_text=4000):
        tokens = tmp_path / 'tokens'
        tokens.mkdir(exist_ok=True)
        (tokens / 'controller').write_text(CONTROLLER + '\n')
        (tokens / 'webhook').write_text(WEBHOOK + '\n')
        self.config = desk.Config(port=0, namespace='opsdrill-ctl-seo-tool',
                                  tokens_dir=str(tokens), max_text=max_text)
        self.store = store if store is not None else desk.MemoryStore()
        self.httpd = desk.build_server(self.config, self.store, FakeReviewer(USERS),
                                       host='127.0.0.1', port=0)
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.httpd.shutdown()
            self.httpd.server_close()

    def request(self, method, path, body=None, headers=None, opener=None, form=False):
        headers = dict(headers or {})
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers.setdefault('Content-Type', 'application/x-www-form-urlencoded')
            elif isinstance(body, bytes):
                data = body
                headers.setdefault('Content-Type', 'application/json')
            else:
                data = json.dumps(body).encode()
                headers.setdefault('Content-Type', 'application/json')
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        opener = opener or urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as resp:
                return Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read())

    def api(self, method, path, body=None, token='tok-t1'):
        return self.request(method, path, body, {'Authorization': 'Bearer ' + token})

    def ctl(self, path, body=None):
        return self.request('POST', path, body if body is not None else {},
                            {'X-Desk-Controller-Token': CONTROLLER})

    def open_drill(self, **changes):
        body = dict(OPEN_BODY, **changes)
        reply = self.ctl('/api/drills', body)
        assert reply.status == 201, reply.text
        return reply.json()

    def browser(self, token):
        return Browser(self, token)


class Browser:
    """A cookie-keeping client that logs in through the form."""

    def __init__(self, server, token):
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            NoRedirect, urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar))
        self.login = server.request('POST', '/login', {'token': token}, opener=self.opener, form=True)

    def get(self, path):
        return self.server.request('GET', path, opener=self.opener)

    def csrf(self, path='/drills/' + DRILL):
        return re.search(r'name="csrf" value="([^"]+)"', self.get(path).text).group(1)

    def post_form(self, path, fields):
        return self.server.request('POST', path, fields, opener=self.opener, form=True)


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(desk, 'LOG_STREAM', io.StringIO())
    started = []

    def start(**kwargs):
        srv = Server(tmp_path, **kwargs)
        started.append(srv)
        return srv

    srv = start()
    srv.start = start
    yield srv
    for one in started:
        one.stop()


def entries(srv, token='tok-t1'):
    reply = srv.api('GET', '/api/drills/%s/entries' % DRILL, token=token)
    assert reply.status == 200, reply.text
    return reply.json()['entries']


ENTRY_PATH = '/api/drills/%s/entries' % DRILL


# -- authentication --------------------------------------------------------------------

def test_unauthenticated_page_redirects_to_login_and_api_is_401(server):
    page = server.request('GET', '/drills/' + DRILL)
    assert page.status == 303 and page.headers['Location'] == '/login'
    api = server.request('GET', '/api/drills')
    assert api.status == 401 and 'error' in api.json()
    assert server.request('GET', '/healthz').json() == {'status': 'ok', 'records': 0}


def test_login_with_bad_token_is_refused(server):
    bad = server.browser('tok-wrong')
    assert bad.login.status == 401
    assert not list(bad.jar)
    assert bad.get('/').status == 303
    nobody = server.browser('tok-nobody')
    assert nobody.login.status == 403 and 'none of the desk' in nobody.login.text
    good = server.browser('tok-t1')
    assert good.login.status == 303
    cookie = good.login.headers['Set-Cookie']
    assert 'desk_session=' in cookie and 'HttpOnly' in cookie and 'SameSite=Strict' in cookie
    assert good.get('/').status == 200


def test_security_headers_on_every_page(server):
    server.open_drill()
    browser = server.browser('tok-t1')
    for reply in (browser.get('/'), browser.get('/drills/' + DRILL), server.request('GET', '/login'),
                  server.request('GET', '/api/drills')):
        assert "script-src 'self'" in reply.headers['Content-Security-Policy']
        assert "frame-ancestors 'none'" in reply.headers['Content-Security-Policy']
        assert reply.headers['X-Content-Type-Options'] == 'nosniff'
        assert reply.headers['Referrer-Policy'] == 'same-origin'
    page = browser.get('/drills/' + DRILL).text
    assert '<script>' not in page and 'src="/static/desk.js"' in page
    js = server.request('GET', '/static/desk.js').text
    assert 'textContent' in js and 'innerHTML' not in js


def test_logins_keep_the_newest_sessions_per_user_and_overall(server, monkeypatch):
    browsers = [server.browser('tok-t1') for dummy in range(6)]
    assert [b.login.status for b in browsers] == [303] * 6
    assert browsers[0].get('/').status == 303              # the oldest of six was dropped
    assert [b.get('/').status for b in browsers[1:]] == [200] * 5
    monkeypatch.setattr(desk, 'MAX_SESSIONS', 5)
    other = server.browser('tok-t2')
    assert other.get('/').status == 200 and browsers[1].get('/').status == 303
    assert 'desk_sessions 5' in server.request('GET', '/metrics').text


# -- forms and CSRF --------------------------------------------------------------------

def test_form_post_without_csrf_is_403(server):
    server.open_drill()
    browser = server.browser('tok-t1')
    fields = {'kind': 'log', 'text': 'restarted backend'}
    assert browser.post_form(ENTRY_PATH, fields).status == 403
    assert browser.post_form(ENTRY_PATH, dict(fields, csrf='forged')).status == 403
    assert entries(server) and not [e for e in entries(server) if e['kind'] == 'log']
    ok = browser.post_form(ENTRY_PATH, dict(fields, csrf=browser.csrf()))
    assert ok.status == 303 and ok.headers['Location'] == '/drills/' + DRILL
    logs = [e for e in entries(server) if e['kind'] == 'log']
    assert logs[0]['author'] == 'trainee-1' and logs[0]['scoring_kind'] == 'incident_log'


def test_cross_origin_posts_are_403(server):
    server.open_drill()
    login = {'token': 'tok-t1'}
    foreign = server.request('POST', '/login', login, {'Origin': 'http://evil.example'}, form=True)
    assert foreign.status == 403 and 'Set-Cookie' not in foreign.headers
    assert server.request('POST', '/login', login, {'Sec-Fetch-Site': 'same-site'}, form=True).status == 403
    assert server.request('POST', '/login', login, {'Origin': server.url}, form=True).status == 303
    browser = server.browser('tok-t1')
    fields = {'csrf': browser.csrf(), 'kind': 'log', 'text': 'restarted backend'}
    for headers in ({'Origin': 'http://evil.example'}, {'Origin': server.url[:-1]},
                    {'Origin': 'null'}, {'Sec-Fetch-Site': 'cross-site'}):
        reply = server.request('POST', ENTRY_PATH, fields, headers, opener=browser.opener, form=True)
        assert reply.status == 403, headers
    api = server.request('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x'},
                         {'Authorization': 'Bearer tok-t1', 'Origin': 'http://evil.example'})
    assert api.status == 403 and 'Origin' in api.json()['error']
    assert not [e for e in entries(server) if e['kind'] == 'log']
    own = server.request('POST', ENTRY_PATH, fields, {'Origin': server.url, 'Sec-Fetch-Site': 'same-origin'},
                         opener=browser.opener, form=True)
    assert own.status == 303 and [e['text'] for e in entries(server) if e['kind'] == 'log'] == ['restarted backend']
    # Chromium posts the desk's own forms with Origin "null" under a strict referrer policy;
    # its Sec-Fetch-Site (which no page can set) says same-origin.
    again = server.request('POST', ENTRY_PATH, fields, {'Origin': 'null', 'Sec-Fetch-Site': 'same-origin'},
                           opener=browser.opener, form=True)
    assert again.status == 303


def test_page_forms_have_the_documented_ids(server):
    server.open_drill()
    page = server.browser('tok-t1').get('/drills/' + DRILL).text
    for hook in ('ack-button', 'status-text', 'status-submit', 'role-select', 'role-submit',
                 'log-text', 'fix-text', 'fix-submit', 'feed'):
        assert 'id="%s"' % hook in page
    assert 'name="audience"' in page


# -- entry rules -----------------------------------------------------------------------

def test_claiming_another_author_is_403(server):
    server.open_drill()
    reply = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x', 'author': 'trainee-2'})
    assert reply.status == 403 and 'author' in reply.json()['error']
    same = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x', 'author': 'trainee-1'})
    assert same.status == 201 and same.json()['author'] == 'trainee-1'


def test_ts_in_body_is_400(server):
    server.open_drill()
    reply = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x', 'ts': '2020-01-01T00:00:00Z'})
    assert reply.status == 400 and 'ts' in reply.json()['error']


def test_unknown_kind_or_field_is_400(server):
    server.open_drill()
    kind = server.api('POST', ENTRY_PATH, {'kind': 'brag', 'text': 'x'})
    assert kind.status == 400 and 'acknowledge' in kind.json()['error']
    field = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x', 'mood': 'calm'})
    assert field.status == 400 and 'mood' in field.json()['error']
    audience = server.api('POST', ENTRY_PATH, {'kind': 'status_update', 'text': 'x', 'audience': 'press'})
    assert audience.status == 400 and 'users' in audience.json()['error']


def test_entry_before_open_and_after_close_is_409(server):
    before = server.api('POST', ENTRY_PATH, {'kind': 'acknowledge'})
    assert before.status == 409
    assert before.json()['error'].startswith('outside the drill window: acknowledge is accepted '
                                             'while the drill is open; it is')
    server.open_drill()
    assert server.api('POST', ENTRY_PATH, {'kind': 'acknowledge'}).status == 201
    assert server.ctl('/api/drills/%s/close' % DRILL).status == 201
    after = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'late'})
    assert after.status == 409
    assert after.json()['error'] == ('outside the drill window: log is accepted while the drill '
                                     'is open; it is closed')


def test_postmortem_before_close_is_409_and_after_close_is_stored(server):
    server.open_drill()
    early = server.api('POST', ENTRY_PATH, {'kind': 'postmortem', 'text': 'summary'})
    assert early.status == 409 and 'is accepted while the drill is closed; it is open' in early.json()['error']
    server.ctl('/api/drills/%s/close' % DRILL)
    browser = server.browser('tok-t1')
    page = browser.get('/drills/' + DRILL).text
    for hook in ('pm-review-1', 'pm-review-4', 'pm-improvement-1', 'pm-action-title-5',
                 'pm-action-owner-5', 'pm-summary', 'pm-submit', 'pm-timeline'):
        assert 'id="%s"' % hook in page
    assert 'Communication quality' in page
    fields = {'csrf': browser.csrf(), 'kind': 'postmortem', 'pm-review-3': 'Updates were late',
              'pm-action-title-1': 'Add a DB alert', 'pm-action-owner-1': 'trainee-2',
              'pm-action-title-2': '', 'pm-action-owner-2': '', 'pm-summary': 'DB scaled to 0'}
    no_owner = dict(fields, **{'pm-action-title-2': 'Write runbook'})
    refused = browser.post_form(ENTRY_PATH, no_owner)
    assert refused.status == 400 and 'owner' in refused.text
    assert browser.post_form(ENTRY_PATH, fields).status == 303
    post = [e for e in entries(server) if e['kind'] == 'postmortem'][0]
    assert post['sections'] == {
        'review': {'Communication quality': 'Updates were late'}, 'improvements': {},
        'action_items': [{'title': 'Add a DB alert', 'owner': 'trainee-2'}]}
    assert post['text'] == 'DB scaled to 0' and post['scoring_kind'] == 'postmortem'


def test_script_in_entry_is_escaped_in_html_and_intact_in_json(server):
    server.open_drill()
    evil = '<script>alert(1)</script>'
    assert server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': evil}).status == 201
    page = server.browser('tok-t2').get('/drills/' + DRILL).text
    assert evil not in page and '<script>alert' not in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in page
    assert [e['text'] for e in entries(server) if e['kind'] == 'log'] == [evil]


def test_text_over_the_limit_is_413(server):
    small = server.start(max_text=100)
    small.open_drill()
    reply = small.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x' * 101})
    assert reply.status == 413 and 'text' in reply.json()['error']
    assert small.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x' * 100}).status == 201


def test_body_over_64_kib_is_413(server):
    server.open_drill()
    body = json.dumps({'kind': 'log', 'text': 'x' * (65 * 1024)}).encode()
    reply = server.api('POST', ENTRY_PATH, body)
    assert reply.status == 413 and 'body' in reply.json()['error']
    assert server.request('GET', '/healthz').status == 200


def test_correction_by_another_user_is_403(server):
    server.open_drill()
    first = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'db is fine'}).json()
    reply = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'no', 'supersedes': first['id']},
                       token='tok-t2')
    assert reply.status == 403 and 'supersedes' in reply.json()['error']


def test_correction_by_the_author_keeps_both_records(server):
    server.open_drill()
    first = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'db is fine'}).json()
    second = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'db is down',
                                             'supersedes': first['id']})
    assert second.status == 201 and second.json()['supersedes'] == first['id']
    logs = [(e['id'], e['text'], e['supersedes']) for e in entries(server) if e['kind'] == 'log']
    assert logs == [(first['id'], 'db is fine', None), (second.json()['id'], 'db is down', first['id'])]
    other_kind = server.api('POST', ENTRY_PATH, {'kind': 'fix', 'text': 'x', 'supersedes': first['id']})
    assert other_kind.status == 400


# -- seats -----------------------------------------------------------------------------

def test_trainee_gets_no_trainer_page_and_no_fault(server):
    server.open_drill()
    server.ctl('/api/drills/%s/events' % DRILL, {'event': 'fault_injected', 'ts': '2026-11-29T10:15:00Z'})
    trainee = server.browser('tok-t1')
    assert trainee.get('/drills/%s/trainer' % DRILL).status == 403
    for path in ('/api/drills/' + DRILL, '/api/drills', '/api/drills/%s/entries' % DRILL):
        reply = server.api('GET', path)
        assert reply.status == 200 and 'FAULT-MARKER' not in reply.text and '"fault"' not in reply.text
    assert 'FAULT-MARKER' not in trainee.get('/drills/' + DRILL).text
    trainer = server.browser('tok-trainer')
    page = trainer.get('/drills/%s/trainer' % DRILL)
    assert page.status == 200 and 'FAULT-MARKER' in page.text
    for hook in ('mark-target', 'mark-score', 'mark-note', 'mark-submit', 'trainer-timeline'):
        assert 'id="%s"' % hook in page.text
    assert 'fault_injected' in page.text
    assert server.api('GET', '/api/drills/' + DRILL, token='tok-trainer').json()['fault']['action']


def test_marks_are_for_trainers_and_team_entries_for_the_team(server):
    server.open_drill()
    mark = {'kind': 'mark', 'target': 'communication', 'score': 4, 'note': 'clear'}
    assert server.api('POST', ENTRY_PATH, mark).status == 403
    assert server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x'}, token='tok-trainer').status == 403
    trainer = server.browser('tok-trainer')
    form = {'csrf': trainer.csrf('/drills/%s/trainer' % DRILL), 'kind': 'mark',
            'target': 'communication', 'score': '4', 'note': 'clear'}
    reply = trainer.post_form(ENTRY_PATH, form)
    assert reply.status == 303 and reply.headers['Location'].endswith('/trainer')
    marks = [e for e in entries(server, 'tok-trainer') if e['kind'] == 'mark']
    assert (marks[0]['target'], marks[0]['score'], marks[0]['text']) == ('communication', 4, 'clear')
    assert 'pass' not in marks[0]
    assert not [e for e in entries(server) if e['kind'] == 'mark']
    over = server.api('POST', ENTRY_PATH, dict(mark, score=9), token='tok-trainer')
    assert over.status == 400


def test_mark_score_must_be_finite(server):
    server.open_drill()
    trainer = server.browser('tok-trainer')
    csrf = trainer.csrf('/drills/%s/trainer' % DRILL)
    for value in ('nan', 'inf'):
        reply = trainer.post_form(ENTRY_PATH, {'csrf': csrf, 'kind': 'mark', 'target': 'communication',
                                               'score': value})
        assert reply.status == 400 and 'score: must be a finite number' in reply.text
    huge = server.api('POST', ENTRY_PATH, b'{"kind": "mark", "target": "communication", "score": 1e999}',
                      token='tok-trainer')
    assert huge.status == 400 and huge.json()['error'].startswith('score: must be a finite number')
    assert not [e for e in entries(server, 'tok-trainer') if e['kind'] == 'mark']


def test_entries_and_marks_per_author_per_drill_are_capped(server):
    assert desk.MAX_ENTRIES_PER_AUTHOR == 300
    server.open_drill()
    for dummy in range(299):
        server.store.append({'drill_id': DRILL, 'kind': 'log', 'author': 'trainee-1', 'text': 'x'})
        server.store.append({'drill_id': DRILL, 'kind': 'mark', 'author': 'trainer',
                             'target': 'communication', 'score': 1})
    assert server.api('POST', ENTRY_PATH, {'kind': 'acknowledge'}).status == 201       # the 300th
    refused = server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x'})
    assert refused.status == 429
    assert '300' in refused.json()['error'] and 'MAX_ENTRIES_PER_AUTHOR' in refused.json()['error']
    assert server.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'x'}, token='tok-t2').status == 201
    mark = {'kind': 'mark', 'target': 'communication', 'pass': True}
    assert server.api('POST', ENTRY_PATH, mark, token='tok-trainer').status == 201
    assert server.api('POST', ENTRY_PATH, mark, token='tok-trainer').status == 429


# -- Alertmanager ----------------------------------------------------------------------

ALERTS = {'version': '4', 'status': 'firing', 'receiver': 'desk', 'alerts': [{
    'status': 'firing', 'fingerprint': 'abc123',
    'labels': {'alertname': 'ServiceDown', 'severity': 'critical', 'service': 'backend-api',
               'namespace': 'seo-tool'},
    'annotations': {'summary': 'Not responding'},
    'startsAt': '2026-11-29T10:15:42.123456789Z', 'endsAt': '0001-01-01T00:00:00Z'}]}


def test_webhook_needs_its_bearer_and_stores_alert_on_the_drill(server):
    server.open_drill()
    assert server.request('POST', '/api/alertmanager', ALERTS).status == 401
    wrong = server.request('POST', '/api/alertmanager', ALERTS, {'Authorization': 'Bearer tok-t1'})
    assert wrong.status == 401
    hook = {'Authorization': 'Bearer ' + WEBHOOK}
    assert server.request('POST', '/api/alertmanager', ALERTS, hook).status == 200
    assert server.request('POST', '/api/alertmanager', ALERTS, hook).status == 200   # repeat
    alerts = [e for e in entries(server) if e['kind'] == 'alert']
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert['drill_id'] == DRILL and alert['author'] == 'alertmanager'
    assert alert['data']['startsAt'] == '2026-11-29T10:15:42.123456789Z'
    assert alert['text'] == ('[ALERT] ServiceDown\nSeverity: Critical\nService: backend-api\n'
                             'Status: Not responding\nTime: 2026-11-29T10:15:42.123456789Z')
    page = server.browser('tok-t1').get('/drills/' + DRILL).text
    assert 'class="alert-page"' in page and '[ALERT] ServiceDown' in page
    other = json.loads(json.dumps(ALERTS))
    other['alerts'][0]['labels']['namespace'] = 'elsewhere'
    server.request('POST', '/api/alertmanager', other, hook)
    stray = [r for r in server.store.records() if r['kind'] == 'alert' and r['drill_id'] is None]
    assert len(stray) == 1
    assert 'unattached-alerts' in server.browser('tok-t1').get('/').text


def test_alert_page_text_resolved():
    text = desk.alert_page_text({'status': 'resolved', 'labels': {'alertname': 'HighErrorRate',
                                                                  'severity': 'warning'},
                                 'annotations': {'description': '5xx above 5%'},
                                 'startsAt': 'S', 'endsAt': 'E'})
    assert text == ('[RESOLVED] HighErrorRate\nSeverity: Warning\nStatus: 5xx above 5%\n'
                    'Time: S\nResolved: E')


# -- persistence -----------------------------------------------------------------------

def test_records_survive_a_restart(server):
    server.open_drill()
    server.api('POST', ENTRY_PATH, {'kind': 'acknowledge'})
    server.stop()
    again = server.start(store=desk.MemoryStore(server.store.records()))
    assert again.request('GET', '/healthz').json()['records'] == 2
    reply = again.api('POST', ENTRY_PATH, {'kind': 'log', 'text': 'after restart'})
    assert reply.status == 201 and reply.json()['seq'] == 3 and reply.json()['id'] == 'r-000003'
    assert [e['kind'] for e in entries(again)] == ['drill_opened', 'acknowledge', 'log']


class FakeClient:
    def __init__(self, existing):
        self.calls = []
        self.existing = existing

    def request(self, method, path, body=None, query=None):
        self.calls.append((method, path, body, query))
        if method == 'GET':
            if not (query or {}).get('continue'):
                return {'items': self.existing[:1], 'metadata': {'continue': 'page2'}}
            return {'items': self.existing[1:], 'metadata': {}}
        return dict(body, metadata=dict(body['metadata'], name='desk-record-x1'))


def test_configmap_store_builds_the_configmap_and_continues_seq():
    def cm(record):
        return {'metadata': {'name': 'desk-record-%d' % record['seq']},
                'data': {'record.json': json.dumps(record)}}
    client = FakeClient([cm({'seq': 7, 'id': 'r-000007', 'kind': 'log', 'drill_id': 'd'}),
                         cm({'seq': 12, 'id': 'r-000012', 'kind': 'log', 'drill_id': 'd'}),
                         {'metadata': {'name': 'broken'}, 'data': {'record.json': '{'}}])
    store = desk.ConfigMapStore(client, 'opsdrill-ctl-seo-tool')
    method, path, query = client.calls[0][0], client.calls[0][1], client.calls[0][3]
    assert (method, path) == ('GET', '/api/v1/namespaces/opsdrill-ctl-seo-tool/configmaps')
    assert query['labelSelector'] == 'opsdrill.io/desk-record=true'
    assert [r['seq'] for r in store.records()] == [7, 12]
    record = store.append({'drill_id': 'seo-tool/20261129T101500Z!', 'kind': 'log', 'text': 'x'})
    assert record['seq'] == 13 and record['id'] == 'r-000013'
    method, path, body = client.calls[-1][:3]
    assert (method, path) == ('POST', '/api/v1/namespaces/opsdrill-ctl-seo-tool/configmaps')
    assert body['metadata']['name'] == 'desk-record-00000013' and 'generateName' not in body['metadata']
    assert body['metadata']['labels']['opsdrill.io/desk-record'] == 'true'
    assert body['metadata']['labels']['opsdrill.io/drill-id'] == 'seo-tool-20261129T101500Z'
    assert body['immutable'] is True
    assert json.loads(body['data']['record.json']) == record
    assert store.records()[-1] == record


def test_configmap_store_keeps_nothing_when_the_api_refuses():
    class Failing(FakeClient):
        def request(self, method, path, body=None, query=None):
            if method == 'POST':
                raise k8s_rest.ApiError(403, 'Forbidden', 'no', method, path)
            return {'items': []}
    store = desk.ConfigMapStore(Failing([]), 'ns')
    with pytest.raises(k8s_rest.ApiError):
        store.append({'drill_id': None, 'kind': 'alert'})
    assert store.records() == []
    assert store.append.__self__._seq == 1      # burnt: the create may have happened


def test_configmap_store_names_by_seq_and_never_reuses_a_failed_seq():
    class Flaky(FakeClient):
        def __init__(self, existing):
            super().__init__(existing)
            self.errors = [k8s_rest.ApiError(0, 'Unreachable', 'timed out', 'POST', 'p'),
                           k8s_rest.ApiError(409, 'AlreadyExists', 'exists', 'POST', 'p')]

        def request(self, method, path, body=None, query=None):
            if method == 'POST' and self.errors:
                self.calls.append((method, path, body, query))
                raise self.errors.pop(0)
            return super().request(method, path, body, query)
    old = {'seq': 4, 'id': 'r-000004', 'kind': 'log', 'drill_id': 'd'}       # a generateName'd one
    client = Flaky([{'metadata': {'name': 'desk-record-x7k2p'}, 'data': {'record.json': json.dumps(old)}}])
    store = desk.ConfigMapStore(client, 'ns')
    with pytest.raises(k8s_rest.ApiError):
        store.append({'drill_id': 'd', 'kind': 'log'})
    # 6 exists (someone else's): the store reads what it missed and takes the next number.
    client.existing.append({'metadata': {'name': 'desk-record-00000006'}, 'data': {'record.json': json.dumps(
        {'seq': 6, 'id': 'r-000006', 'kind': 'alert', 'drill_id': 'd'})}})
    record = store.append({'drill_id': 'd', 'kind': 'log'})
    assert record['id'] == 'r-000007' and [r['seq'] for r in store.records()] == [4, 6, 7]
    names = [call[2]['metadata']['name'] for call in client.calls if call[0] == 'POST']
    assert names == ['desk-record-00000005', 'desk-record-00000006', 'desk-record-00000007']


def test_configmap_store_gives_up_after_three_taken_numbers():
    class Taken(FakeClient):
        def request(self, method, path, body=None, query=None):
            if method == 'POST':
                self.calls.append((method, path, body, query))
                raise k8s_rest.ApiError(409, 'AlreadyExists', 'exists', 'POST', 'p')
            return super().request(method, path, body, query)
    store = desk.ConfigMapStore(Taken([]), 'ns')
    with pytest.raises(RuntimeError, match='desk-record-00000003 already exists'):
        store.append({'drill_id': 'd', 'kind': 'log'})
    assert store.records() == []


def test_token_reviewer_posts_a_tokenreview_and_caches():
    class Client:
        calls = 0

        def request(self, method, path, body=None, query=None):
            Client.calls += 1
            assert (method, path) == ('POST', '/apis/authentication.k8s.io/v1/tokenreviews')
            assert body['kind'] == 'TokenReview' and body['spec']['token'] in ('good', 'bad')
            if body['spec']['token'] == 'bad':
                return {'status': {'authenticated': False}}
            return {'status': {'authenticated': True,
                               'user': {'username': 'trainee-1', 'groups': TEAM}}}
    now = [0.0]
    reviewer = desk.TokenReviewer(Client(), clock=lambda: now[0])
    assert reviewer.review('good') == ('trainee-1', TEAM)
    assert reviewer.review('good') == ('trainee-1', TEAM)
    assert reviewer.review('bad') is None
    assert Client.calls == 2
    now[0] = 61
    reviewer.review('good')
    assert Client.calls == 3


def test_token_reviewer_cache_has_a_hard_cap():
    class Client:
        def __init__(self):
            self.tokens = []

        def request(self, method, path, body=None, query=None):
            self.tokens.append(body['spec']['token'])
            return {'status': {'authenticated': False}}
    client = Client()
    reviewer = desk.TokenReviewer(client, clock=lambda: 0.0)    # nothing expires
    for number in range(1500):
        assert reviewer.review('random-%d' % number) is None
    assert len(reviewer._cache) == 1000
    reviewer.review('random-1499')
    assert len(client.tokens) == 1500                            # the newest is still cached
    reviewer.review('random-0')
    assert client.tokens[-1] == 'random-0'                       # the oldest was evicted


# -- controller, pages, metrics --------------------------------------------------------

def test_controller_lifecycle_reports_history_and_metrics(server):
    server.open_drill()
    assert server.ctl('/api/drills', OPEN_BODY).status == 409
    assert server.api('POST', '/api/drills/%s/close' % DRILL, {}).status == 403
    assert server.ctl('/api/drills/%s/finalize' % DRILL, {'summary': {'percent': 50}}).status == 409
    server.ctl('/api/drills/%s/close' % DRILL)
    report = {'name': 'scorecard.html', 'content_type': 'text/html', 'content': '<h1>Score</h1>'}
    assert server.ctl('/api/drills/%s/reports' % DRILL, report).status == 201
    assert server.ctl('/api/drills/%s/reports' % DRILL, dict(report, name='../x')).status == 400
    summary = {'team': 'seo-tool', 'mtta_s': '95', 'mttr_s': 610, 'percent': 72.5, 'result': 'recovered_by_team'}
    assert server.ctl('/api/drills/%s/finalize' % DRILL, {'summary': dict(summary, percent='lots')}).status == 400
    assert server.ctl('/api/drills/%s/finalize' % DRILL, {'summary': summary}).status == 201
    mark = {'kind': 'mark', 'target': 'communication', 'pass': True}
    assert server.api('POST', ENTRY_PATH, mark, token='tok-trainer').status == 409
    path = '/api/drills/%s/reports/scorecard.html' % DRILL
    assert server.api('GET', path).status == 403
    got = server.api('GET', path, token='tok-trainer')
    assert got.status == 200 and got.text == '<h1>Score</h1>'
    assert got.headers['Content-Security-Policy'].startswith('sandbox;')
    home = server.browser('tok-trainer').get('/').text
    assert 'class="history"' in home and '1m 35s' in home and '72.5%' in home and '<svg' in home
    assert 'class="history"' not in server.browser('tok-t1').get('/').text
    finalized = server.api('GET', '/api/drills/' + DRILL).json()
    assert finalized['state'] == 'finalized' and finalized['summary']['mtta_s'] == 95
    metrics = server.request('GET', '/metrics').text
    assert 'desk_records_total{kind="drill_finalized"} 1' in metrics


def test_validation_refuses_a_trailing_newline(server):
    assert server.ctl('/api/drills', dict(OPEN_BODY, drill_id=DRILL + '\n')).status == 400
    server.open_drill()
    path = '/api/drills/%s/reports' % DRILL
    report = {'name': 'a', 'content_type': 'text/html', 'content': '<p>x</p>'}
    name = server.ctl(path, dict(report, name='a\n'))
    assert name.status == 400 and name.json()['error'].startswith('name:')
    ctype = server.ctl(path, dict(report, content_type='text/html\n'))
    assert ctype.status == 400 and ctype.json()['error'].startswith('content_type:')
    assert server.ctl(path, report).status == 201


def test_reports_are_sandboxed_whatever_their_type(server):
    server.open_drill()
    for name, ctype in (('score.html', 'text/html'), ('score.json', 'application/json'),
                        ('notes.txt', 'text/plain; charset=utf-8')):
        body = {'name': name, 'content_type': ctype, 'content': '<script>alert(1)</script>'}
        assert server.ctl('/api/drills/%s/reports' % DRILL, body).status == 201
        got = server.api('GET', '/api/drills/%s/reports/%s' % (DRILL, name), token='tok-trainer')
        assert got.status == 200 and got.headers['Content-Type'] == ctype
        assert got.headers['Content-Security-Policy'] == (
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
        assert got.headers['X-Content-Type-Options'] == 'nosniff'


def test_config_errors_exit_2(tmp_path, capsys):
    assert desk.main(environ={'DESK_PORT': 'eighty', 'DESK_TOKENS_DIR': str(tmp_path),
                              'DESK_NAMESPACE': 'ns'}) == 2
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line['level'] == 'ERROR' and 'DESK_PORT' in line['msg'] and '65535' in line['msg']
    with pytest.raises(desk.ConfigError, match='DESK_TEAM_GROUPS'):
        desk.load_config({'DESK_TEAM_GROUPS': 'a,,b', 'DESK_TOKENS_DIR': str(tmp_path),
                          'DESK_NAMESPACE': 'ns'})
    config = desk.load_config({'DESK_TOKENS_DIR': str(tmp_path), 'DESK_NAMESPACE': 'ns'})
    assert (config.port, config.max_text, config.session_ttl_s) == (8080, 4000, 43200)
    assert config.trainer_groups == ('opsdrill:trainers', 'system:masters')


def test_scoring_kinds():
    assert desk.SCORING_KIND['role'] == 'team_coordination'
    assert desk.scoring_kind({'kind': 'status_update', 'audience': 'users'}) == 'user_notification'
    assert desk.scoring_kind({'kind': 'status_update', 'audience': 'management'}) == 'management_brief'
    assert desk.scoring_kind({'kind': 'alert'}) is None


# -- CLI -------------------------------------------------------------------------------

def test_cli_posts_an_update_and_reads_the_feed(server, tmp_path):
    server.open_drill()
    token = tmp_path / 'token'
    token.write_text('tok-t2\n')
    out, err = io.StringIO(), io.StringIO()
    code = desk_cli.main(['--url', server.url, '--token-file', str(token), 'update', DRILL,
                          'Backend down, investigating', '--audience', 'users'],
                         environ={}, out=out, err=err)
    assert code == 0, err.getvalue()
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text('apiVersion: v1\ncontexts:\n- context:\n    cluster: lab\n'
                          '    user: trainee-2\n  name: lab\ncurrent-context: lab\nusers:\n'
                          '- name: trainee-2\n  user:\n    token: tok-t2\n')
    out = io.StringIO()
    assert desk_cli.main(['--url', server.url, '--kubeconfig', str(kubeconfig), 'feed', DRILL],
                         environ={}, out=out, err=err) == 0
    line = [x for x in out.getvalue().splitlines() if ' status_update ' in x][0]
    assert line.split(' ', 3)[1:] == ['trainee-2', 'status_update', 'Backend down, investigating']
    err = io.StringIO()
    server.ctl('/api/drills/%s/close' % DRILL)
    assert desk_cli.main(['--url', server.url, 'log', DRILL, 'late'], environ={'DESK_TOKEN': 'tok-t2'},
                         out=io.StringIO(), err=err) == 1
    assert 'outside the drill window' in err.getvalue()
    assert desk_cli.main(['--url', server.url, 'log', DRILL], environ={'DESK_TOKEN': 'x'},
                         out=io.StringIO(), err=io.StringIO()) == 2
    assert desk_cli.main(['bogus', DRILL], environ={}, out=io.StringIO(), err=io.StringIO()) == 2
