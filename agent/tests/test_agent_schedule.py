"""When to renew: a fixed point inside the portal's window, else two thirds of the life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent_certs import self_signed
from cryptography import x509

from certportal_agent import crypto
from certportal_agent.engine import jittered

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_jitter_stays_inside_the_window_and_is_stable() -> None:
    end = START + timedelta(days=10)
    points = {jittered(START, end, f"serial-{n}") for n in range(50)}
    assert all(START <= point <= end for point in points)
    assert len(points) == 50  # hosts spread out
    assert jittered(START, end, "serial-1") == jittered(START, end, "serial-1")


def test_an_empty_window_means_its_start() -> None:
    assert jittered(START, START, "x") == START


def test_fallback_is_two_thirds_of_the_lifetime() -> None:
    leaf = x509.load_pem_x509_certificate(self_signed(days=3).certificate)
    life = crypto.lifetime(leaf)
    assert life.two_thirds() == life.not_before + timedelta(days=2)
