"""The config file: clear errors naming the entry, and no token inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from certportal_agent import config
from certportal_agent.errors import ConfigError

BASE = """
[portal]
url = "https://portal.example.test/"
application = "web-hosts"
token_file = "/etc/certportal-agent/token"

[[certificate]]
name = "web"
profile = "tls-server"
sans = ["web.example.test"]
directory = "/etc/ssl/certportal/web"
"""


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return config.load(path)


def test_defaults_fill_in_an_entry(tmp_path: Path) -> None:
    loaded = load(tmp_path, BASE)
    entry = loaded.entries[0]
    assert entry.portal.url == "https://portal.example.test"
    assert entry.key_type == "EC_P256" and entry.key_mode == 0o600 and entry.cert_mode == 0o644
    assert entry.files["fullchain"] == "fullchain.pem"
    assert entry.names == ("web.example.test",)
    assert loaded.interval == 3600


def test_the_sample_config_shipped_with_the_agent_loads() -> None:
    sample = Path(__file__).resolve().parents[1] / "examples" / "config.toml"
    loaded = config.load(sample)
    assert [entry.name for entry in loaded.entries] == ["www", "mail"]
    assert loaded.entries[0].check is not None
    assert loaded.entries[0].reload == (("systemctl", "reload", "nginx"),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('token_file = "/etc/certportal-agent/token"', 'token = "cpt_secret"'), "'token' is not"),
        (('profile = "tls-server"', 'profile = "tls-server"\nkye_type = "RSA_2048"'), "kye_type"),
        (('profile = "tls-server"', 'profile = "tls-server"\nkey_type = "DSA"'), "key_type"),
        (('sans = ["web.example.test"]', ""), "give common_name and/or sans"),
        (('directory = "/etc/ssl/certportal/web"', ""), "directory is required"),
        (('profile = "tls-server"', 'profile = "tls-server"\nkey_mode = "rw"'), "key_mode"),
        (('profile = "tls-server"', 'profile = "tls-server"\nreload = [""]'), "reload command"),
        (('token_file = "/etc/certportal-agent/token"', ""), "token_file or token_env"),
    ],
    ids=[
        "token",
        "unknown-key",
        "key-type",
        "no-names",
        "no-directory",
        "mode",
        "empty-hook",
        "no-token-source",
    ],
)
def test_a_bad_entry_is_named_in_the_error(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as failed:
        load(tmp_path, BASE.replace(*change))
    assert message in str(failed.value)
    if "token" not in change[1]:
        assert "certificate 'web'" in str(failed.value)


def test_the_token_never_appears_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as failed:
        load(
            tmp_path,
            BASE.replace('profile = "tls-server"', 'profile = "tls-server"\ntoken = "cpt_abc"'),
        )
    assert "cpt_abc" not in str(failed.value)


def test_two_entries_cannot_share_a_name(tmp_path: Path) -> None:
    second = BASE[BASE.index("[[certificate]]") :]
    with pytest.raises(ConfigError, match="more than one entry"):
        load(tmp_path, BASE + second)


def test_durations_accept_units(tmp_path: Path) -> None:
    loaded = load(tmp_path, '[agent]\ninterval = "15m"\npoll_interval = 30\n' + BASE)
    assert loaded.interval == 900 and loaded.poll_interval == 30
    with pytest.raises(ConfigError, match="interval"):
        load(tmp_path, '[agent]\ninterval = "soon"\n' + BASE)
