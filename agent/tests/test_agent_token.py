"""The token comes from a file or the environment, and never shows in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from certportal_agent.config import Portal
from certportal_agent.errors import ConfigError
from certportal_agent.portal import read_token


def portal(token_file: Path | None = None, token_env: str | None = None) -> Portal:
    return Portal("http://p", "app", token_file, token_env, None, 5)


def test_the_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("cpt_abc\n")
    assert read_token(portal(token_file=path), "certificate 'web'") == "cpt_abc"


def test_the_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TEST_TOKEN", "cpt_env")
    assert read_token(portal(token_env="AGENT_TEST_TOKEN"), "certificate 'web'") == "cpt_env"


def test_a_missing_source_names_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="certificate 'web': environment variable"):
        read_token(portal(token_env="AGENT_TEST_TOKEN"), "certificate 'web'")
    with pytest.raises(ConfigError, match=r"certificate 'web': token file .* cannot be read"):
        read_token(portal(token_file=tmp_path / "absent"), "certificate 'web'")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_token(portal(token_file=empty), "certificate 'web'")
