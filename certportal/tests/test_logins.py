"""Every path that checks a password is throttled on one set of counters: the portal's
login, the Django admin's login, password change; password reset is throttled or absent.
Counters key on the folded username and the client address read the trusted way."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse

from certportal import auth
from certportal.clientip import client_ip

FULLWIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Any:
    cache.clear()
    yield
    cache.clear()


def _fail(client: Client, url: str, username: str, times: int) -> None:
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong"})
        assert response.status_code == 200  # the form again, not a redirect


def _logs_in(client: Client, url: str, username: str) -> bool:
    response = client.post(url, {"username": username, "password": f"pw-{username}"})
    return response.status_code == 302 and "_auth_user_id" in client.session


# --- the admin login shares the portal's counters ----------------------------------------


def test_admin_login_failures_lock_the_portal_login(personas: dict) -> None:
    client = Client()
    _fail(client, reverse("admin:login"), "product-admin", auth.PAIR.failures)
    response = client.post(
        reverse("login"), {"username": "product-admin", "password": "pw-product-admin"}
    )
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_portal_login_failures_lock_the_admin_login(personas: dict) -> None:
    client = Client()
    _fail(client, reverse("login"), "product-admin", auth.PAIR.failures)
    response = client.post(
        reverse("admin:login"), {"username": "product-admin", "password": "pw-product-admin"}
    )
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_admin_login_still_works_for_staff_and_refuses_others(personas: dict) -> None:
    assert _logs_in(Client(), reverse("admin:login"), "product-admin")
    assert not _logs_in(Client(), reverse("admin:login"), "app-operator")  # not staff


# --- usernames are folded ----------------------------------------------------------------


def test_username_is_folded_nfkc_and_casefolded() -> None:
    assert auth.normalise_username(" Alice ") == "alice"
    assert auth.normalise_username("ALICE") == "alice"
    assert auth.normalise_username(FULLWIDTH_ALICE) == "alice"
    assert auth.normalise_username("STRASSE") == auth.normalise_username("straße")


def test_spelling_variants_of_a_username_share_one_counter(personas: dict) -> None:
    client = Client()
    url = reverse("login")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "app-operator")
    for variant in ("App-Operator", "APP-OPERATOR", fullwidth, " app-operator", "aPp-operator"):
        client.post(url, {"username": variant, "password": "wrong"})
    assert not _logs_in(client, url, "app-operator")


# --- the client address ------------------------------------------------------------------


def _ip(settings: Any, proxies: list[str], remote: str, forwarded: str | None = None) -> str | None:
    settings.CERTPORTAL_TRUSTED_PROXIES = proxies
    meta: dict[str, Any] = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **meta))


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(settings: Any) -> None:
    assert _ip(settings, [], "203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert _ip(settings, ["10.0.0.0/8"], "203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(
    settings: Any,
) -> None:
    proxies = ["10.0.0.0/8", "192.0.2.7"]
    # The client forged the left-most entry; the outer proxy appended the real peer.
    assert _ip(settings, proxies, "10.1.1.1", "1.2.3.4, 198.51.100.1") == "198.51.100.1"
    # Two proxies in a row: both skipped.
    assert _ip(settings, proxies, "10.1.1.1", "1.2.3.4, 198.51.100.1, 192.0.2.7") == (
        "198.51.100.1"
    )
    assert _ip(settings, proxies, "10.1.1.1", "[2001:db8::5]:4431") == "2001:db8::5"
    assert _ip(settings, proxies, "10.1.1.1", "198.51.100.1:5555") == "198.51.100.1"
    assert _ip(settings, proxies, "::ffff:10.1.1.1", "198.51.100.1") == "198.51.100.1"
    assert _ip(settings, proxies, "10.1.1.1") == "10.1.1.1"  # no header: the proxy itself
    # Garbage where the proxy's entry should be: stop at the last hop we can account for.
    assert _ip(settings, proxies, "10.1.1.1", "198.51.100.1, not-an-ip") == "10.1.1.1"
    assert _ip(settings, proxies, "unix:/run/sock") is None


def test_a_forged_forwarded_for_does_not_dodge_the_address_lock(personas: dict) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(auth.ADDRESS.failures):
        client.post(
            reverse("login"),
            {"username": f"guess{i}", "password": "x"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        )
    response = client.post(
        reverse("login"),
        {"username": "app-auditor", "password": "pw-app-auditor"},
        HTTP_X_FORWARDED_FOR="192.0.2.1",
    )
    assert "Too many failed log-in attempts" in response.content.decode()


def test_behind_a_trusted_proxy_clients_are_counted_apart(personas: dict, settings: Any) -> None:
    settings.CERTPORTAL_TRUSTED_PROXIES = ["10.0.0.1"]
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for i in range(auth.ADDRESS.failures):
        proxy.post(
            reverse("login"),
            {"username": f"guess{i}", "password": "x"},
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )
    url = reverse("login")
    data = {"username": "app-auditor", "password": "pw-app-auditor"}
    locked = proxy.post(url, data, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert "Too many failed log-in attempts" in locked.content.decode()
    assert proxy.post(url, data, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302


def test_api_anonymous_throttle_ignores_a_forged_forwarded_for(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    import time_machine

    client = Client(REMOTE_ADDR="203.0.113.9")
    with time_machine.travel(1_800_000_000 - 40, tick=False):  # all in one window
        statuses = [
            client.get("/api/docs/", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
            for i in range(5)
        ]
    assert statuses == [200, 200, 200, 429, 429]  # anonymous, throttled per address


def test_audit_events_record_the_client_address_not_the_forged_one(
    personas: dict, application: Any
) -> None:
    from applications.models import AuditEvent

    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(personas["admin"])
    client.post(
        reverse("applications:members", args=[application.name]),
        {"username": "outsider", "role": "auditor"},
        HTTP_X_FORWARDED_FOR="198.51.100.77",
    )
    event = AuditEvent.objects.filter(action="member.added").latest("pk")
    assert event.source_ip == "203.0.113.9"


# --- a targeted lockout is bounded --------------------------------------------------------


def test_strangers_lock_their_own_pair_not_the_owner(personas: dict) -> None:
    url = reverse("login")
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    _fail(stranger, url, "app-operator", auth.PAIR.failures)
    assert not _logs_in(stranger, url, "app-operator")  # the pair is locked
    assert _logs_in(Client(REMOTE_ADDR="198.51.100.1"), url, "app-operator")  # the owner is not


def test_a_pair_lock_leaves_the_address_free_for_other_users(personas: dict) -> None:
    url = reverse("login")
    shared = Client(REMOTE_ADDR="203.0.113.9")
    _fail(shared, url, "app-operator", auth.PAIR.failures)
    assert _logs_in(Client(REMOTE_ADDR="203.0.113.9"), url, "app-auditor")


def test_the_user_locks_only_after_many_failures_from_many_addresses(
    personas: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "USER", auth.Limit("user", 4 * auth.PAIR.failures + 1, 120))
    url = reverse("login")
    # Four strangers, each stopped by its pair lock; the owner still gets in.
    for n in range(4):
        stranger = Client(REMOTE_ADDR=f"203.0.113.{n}")
        _fail(stranger, url, "app-operator", auth.PAIR.failures)
        assert not _logs_in(stranger, url, "app-operator")
    assert _logs_in(Client(REMOTE_ADDR="198.51.100.1"), url, "app-operator")
    _fail(Client(REMOTE_ADDR="203.0.113.50"), url, "app-operator", 1)  # reaches the user limit
    owner = Client(REMOTE_ADDR="198.51.100.2")
    response = owner.post(url, {"username": "app-operator", "password": "pw-app-operator"})
    assert "Wait 2 minutes" in response.content.decode()  # the user lock's shorter time
    assert auth.USER.seconds < auth.PAIR.seconds == auth.ADDRESS.seconds


def test_default_thresholds_lock_the_pair_before_the_user() -> None:
    assert auth.PAIR.failures < auth.ADDRESS.failures < auth.USER.failures
    assert auth.USER.seconds < auth.PAIR.seconds


def test_a_lock_lasts_its_full_time_from_the_failure_that_set_it(
    personas: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[tuple[str, int]] = []
    monkeypatch.setattr(cache, "touch", lambda key, timeout: touched.append((key, timeout)))
    _fail(Client(), reverse("login"), "app-operator", auth.PAIR.failures)
    assert [t for _k, t in touched] == [auth.PAIR.seconds]


# --- counters live in Redis when it is configured ----------------------------------------


def test_with_redis_another_process_sees_the_same_counters(
    personas: dict, redis_cache: str
) -> None:
    from django.core.cache import caches

    url = reverse("login")
    _fail(Client(REMOTE_ADDR="203.0.113.9"), url, "app-operator", auth.PAIR.failures)
    # A second cache client (what another web process holds) reads the same counter.
    other = caches.create_connection("default")
    assert other is not caches["default"]
    pair_key = auth._key(auth.PAIR, "203.0.113.9", "app-operator")
    assert other.get(pair_key) == auth.PAIR.failures
    assert auth.locked_out(RequestFactory().get("/", REMOTE_ADDR="203.0.113.9"), "APP-operator")


# --- password change ---------------------------------------------------------------------


def test_a_wrong_old_password_counts_as_a_failed_login(personas: dict) -> None:
    client = Client()
    client.force_login(personas["operator"])
    url = reverse("password_change")
    new = {"new_password1": "N3w-pass-phrase", "new_password2": "N3w-pass-phrase"}
    for _ in range(auth.PAIR.failures):
        client.post(url, {"old_password": "wrong", **new})
    response = client.post(url, {"old_password": "pw-app-operator", **new})
    assert "Too many failed log-in attempts" in response.content.decode()
    personas["operator"].refresh_from_db()
    assert personas["operator"].check_password("pw-app-operator")
    assert not _logs_in(Client(), reverse("login"), "app-operator")


def test_admin_password_change_is_throttled_too(personas: dict) -> None:
    client = Client()
    client.force_login(personas["product_admin"])
    url = reverse("admin:password_change")
    for _ in range(auth.PAIR.failures):
        client.post(url, {"old_password": "wrong", "new_password1": "x", "new_password2": "x"})
    response = client.post(
        url, {"old_password": "pw-product-admin", "new_password1": "x", "new_password2": "x"}
    )
    assert "Too many failed log-in attempts" in response.content.decode()


# --- password reset ----------------------------------------------------------------------

RESET_ROUTES = [
    ("password_reset", ()),
    ("password_reset_done", ()),
    ("password_reset_confirm", ("MQ", "set-password")),
    ("password_reset_complete", ()),
]


@pytest.mark.parametrize(("name", "args"), RESET_ROUTES)
def test_password_reset_is_absent_without_a_mail_backend(db: Any, name: str, args: tuple) -> None:
    assert Client().get(reverse(name, args=args)).status_code == 404


def test_password_reset_is_absent_with_console_mail_in_production(db: Any, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.CERTPORTAL_EMAIL_CONFIGURED = True
    assert Client().post(reverse("password_reset"), {"email": "a@example.test"}).status_code == 404
    body = Client().get(reverse("login")).content.decode()
    assert "password_reset" not in body and "Forgot" not in body


def test_password_reset_is_offered_when_smtp_is_configured(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.CERTPORTAL_EMAIL_CONFIGURED = False
    assert not auth.password_reset_enabled()
    settings.CERTPORTAL_EMAIL_CONFIGURED = True
    assert auth.password_reset_enabled()


@pytest.fixture
def reset_enabled(settings: Any, personas: dict) -> dict:
    settings.DEBUG = True  # locmem mail counts as delivered in debug mode only
    for name, user in personas.items():
        if user is not None:
            user.email = f"{name}@example.test"
            user.save(update_fields=["email"])
    return personas


def test_login_page_links_password_reset_when_it_is_offered(reset_enabled: dict) -> None:
    body = Client().get(reverse("login")).content.decode()
    assert reverse("password_reset") in body


def test_password_reset_is_throttled_per_email_address(reset_enabled: dict) -> None:
    url = reverse("password_reset")
    for n in range(auth.RESET_PER_EMAIL.failures):
        client = Client(REMOTE_ADDR=f"203.0.113.{n}")
        assert client.post(url, {"email": "operator@example.test"}).status_code == 302
    assert len(mail.outbox) == auth.RESET_PER_EMAIL.failures
    response = Client(REMOTE_ADDR="198.51.100.1").post(url, {"email": "Operator@Example.test"})
    assert response.status_code == 200
    assert "Too many password reset requests" in response.content.decode()
    assert len(mail.outbox) == auth.RESET_PER_EMAIL.failures


def test_password_reset_is_throttled_per_client_address(reset_enabled: dict) -> None:
    url = reverse("password_reset")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(auth.RESET_PER_ADDRESS.failures):
        assert client.post(url, {"email": f"nobody{n}@example.test"}).status_code == 302
    response = client.post(url, {"email": "operator@example.test"})
    assert "Too many password reset requests" in response.content.decode()
    assert mail.outbox == []
