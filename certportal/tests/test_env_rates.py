"""Rate settings (<count>/<period> or off) parse to (count, seconds) or stop the portal."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from certportal import env


@pytest.mark.parametrize(
    ("raw", "rate"),
    [
        ("20/hour", (20, 3600)),
        ("5/s", (5, 1)),
        ("300/3h", (300, 10800)),
        ("1/day", (1, 86400)),
        ("10/15min", (10, 900)),
        (" OFF ", None),
    ],
)
def test_rates_parse(monkeypatch, raw, rate):
    monkeypatch.setenv("CERTPORTAL_TEST_RATE", raw)
    assert env.get_rate("CERTPORTAL_TEST_RATE", "1/s") == rate


def test_the_default_applies_when_unset(monkeypatch):
    monkeypatch.delenv("CERTPORTAL_TEST_RATE", raising=False)
    assert env.get_rate("CERTPORTAL_TEST_RATE", "3/min") == (3, 60)


@pytest.mark.parametrize("raw", ["", "20", "0/hour", "20/0hour", "20/week", "-1/s", "x/s"])
def test_a_bad_rate_stops_the_portal(monkeypatch, raw):
    monkeypatch.setenv("CERTPORTAL_TEST_RATE", raw)
    with pytest.raises(ImproperlyConfigured, match="CERTPORTAL_TEST_RATE"):
        env.get_rate("CERTPORTAL_TEST_RATE", "1/s")
