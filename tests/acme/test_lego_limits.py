"""lego against the ACME rate limits: a refused newOrder reaches lego as a rateLimited
problem document with the portal's detail, and once Retry-After has passed the same
lego command succeeds. (lego does not wait on its own: it reports and stops.)"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.acme.test_lego import LEGO, NAME

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]

WINDOW = 4


def lego(tmp_path: Path, directory_url: str, eab, *command: str) -> subprocess.CompletedProcess:
    args = [LEGO, "--server", directory_url, "--accept-tos", "--email", "ops@example.test"]
    args += ["-d", NAME, "--http", "--http.port", "127.0.0.1:5002", "--eab"]
    args += ["--kid", eab[0], "--hmac", eab[1], "--path", str(tmp_path / "lego"), *command]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not Path(LEGO).exists(), reason="lego is installed by scripts/setup.sh")
def test_lego_is_told_rate_limited_and_succeeds_after_retry_after(
    tmp_path, live_server, directory_url, eab, acme_settings
):
    acme_settings.CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT = (1, WINDOW)
    # Start at the beginning of a window, so the run and the renewal fall in one.
    time.sleep(WINDOW - time.time() % WINDOW)
    first = lego(tmp_path, directory_url, eab, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    renew = ("renew", "--days", "400", "--no-random-sleep")
    refused = lego(tmp_path, directory_url, eab, *renew)
    assert refused.returncode != 0
    assert "urn:ietf:params:acme:error:rateLimited" in refused.stderr
    assert f"at most 1 per {WINDOW} seconds" in refused.stderr
    time.sleep(WINDOW)  # the Retry-After the refusal carried is at most the window
    renewed = lego(tmp_path, directory_url, eab, *renew)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
