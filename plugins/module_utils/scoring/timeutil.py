# -*- coding: utf-8 -*-
# Copyright: (c) 2026, opsdrill contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timestamp parsing and formatting shared by the scoring package."""

from __future__ import annotations

import datetime
import re

UTC = datetime.timezone.utc

# More than 6 fractional digits (Kubernetes can write nanoseconds) are cut
# to microseconds before parsing, so every Python 3.x parser accepts them.
_FRACTION = re.compile(r'(\.\d{6})\d+')


def parse_ts(value):
    """Parse an ISO 8601 timestamp (``Z`` or offset; naive means UTC).

    Accepts a number too (seconds since the epoch). Returns an aware UTC
    datetime. Raises ValueError on anything else.
    """
    if isinstance(value, bool):
        raise ValueError('not a timestamp: %r' % (value,))
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError('empty timestamp')
        text = _FRACTION.sub(r'\1', text)
        if text.endswith(('Z', 'z')):
            text = text[:-1] + '+00:00'
        dt = datetime.datetime.fromisoformat(text)
    else:
        raise ValueError('not a timestamp: %r' % (value,))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_ts(dt):
    """ISO 8601 UTC with milliseconds and ``Z``; None stays None."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (dt.microsecond // 1000)


def seconds_between(start, end):
    """Seconds from ``start`` to ``end`` (None if either is missing)."""
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def format_duration(seconds):
    """``m:ss`` or ``h:mm:ss``; ``-`` for None. Negative values get a sign."""
    if seconds is None:
        return '-'
    sign = '-' if seconds < 0 else ''
    total = int(round(abs(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return '%s%d:%02d:%02d' % (sign, hours, minutes, secs)
    return '%s%d:%02d' % (sign, minutes, secs)


def format_offset(seconds):
    """``T+m:ss`` relative offset used in incident records."""
    if seconds is None:
        return ''
    if seconds < 0:
        return 'T-' + format_duration(-seconds)
    return 'T+' + format_duration(seconds)
