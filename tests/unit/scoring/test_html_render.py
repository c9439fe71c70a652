"""Render scorecard.html in headless Chromium: screenshot and DOM check.

The screenshot is kept under the pytest tmp dir and copied to
~/.cache/opsdrill/screenshots/ so a person can look at it.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.scoring import load_rubric, write_reports

from .conftest import score

CHROMIUM = next((p for p in (shutil.which('chromium'), '/usr/bin/chromium', shutil.which('chromium-browser'),
                             shutil.which('google-chrome')) if p and os.path.exists(p)), None)


@pytest.fixture(autouse=True)
def _chromium_required():
    # A real dependency: missing, the test command fails (make deps installs it).
    if CHROMIUM is None:
        pytest.fail('chromium is not installed (apt-get install -y chromium, or make deps)')


SHOTS = os.path.join(os.path.expanduser('~'), '.cache', 'opsdrill', 'screenshots')
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _chromium(*args, timeout=120):
    profile = tempfile.mkdtemp(prefix='opsdrill-chromium-')
    try:
        cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync',
               '--user-data-dir=%s' % profile] + list(args)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _png_size(path):
    with open(path, 'rb') as handle:
        head = handle.read(24)
    assert head[:8] == PNG_MAGIC
    return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')


CASES = {
    'two-trainees': dict(audit='audit-two-trainees.log', desk='desk-two-trainees.json'),
    'rollback-only': dict(timeline='timeline-rollback-only.jsonl', audit='audit-rollback-only.log', desk=None),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_scorecard_html_renders(case, tmp_path):
    sc = score(**CASES[case])
    paths, dummy = write_reports(sc, str(tmp_path), rubric=load_rubric(), formats=['html'])
    url = 'file://' + paths['html']

    shot = tmp_path / ('scorecard-%s.png' % case)
    proc = _chromium('--screenshot=%s' % shot, '--window-size=1280,2000', url)
    assert shot.is_file(), proc.stderr.decode(errors='replace')[-2000:]
    assert _png_size(str(shot)) == (1280, 2000)
    assert shot.stat().st_size > 20000  # a blank page compresses to a few KB
    os.makedirs(SHOTS, exist_ok=True)
    shutil.copy(str(shot), os.path.join(SHOTS, shot.name))

    proc = _chromium('--dump-dom', url)
    dom = proc.stdout.decode('utf-8', 'replace')
    assert proc.returncode == 0, proc.stderr.decode(errors='replace')[-2000:]
    svg = re.search(r'<svg[^>]*id="timeline-chart".*?</svg>', dom, re.S)
    assert svg, 'timeline chart missing from the rendered DOM'
    chart = svg.group(0)
    assert chart.count('class="milestone"') >= 3  # injection, alert and at least one restore/rollback
    actions = [a for a in sc['actions'] if a.get('actor')]
    assert chart.count('class="action-mark"') + chart.count('class="fix-mark"') >= len(actions) * 0.9
    for person in sc['participants']:
        assert '>%s</text>' % person['name'] in chart
    for c in sc['criteria']:
        row = re.search(r'<tr id="criterion-%s"[^>]*>(.*?)</tr>' % re.escape(c['id']), dom, re.S)
        assert row, c['id']
        status = {'pass': 'pass', 'fail': 'fail', 'not_assessed': 'not assessed'}[c['status']]
        assert '>%s</span>' % status in row.group(1), c['id']
    assert '<script' not in dom
