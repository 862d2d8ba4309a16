"""A service's own key: the environment's, else one made once and kept in var_dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from audifi_kit.keys import service_key
from audifi_kit.settings import Settings


def test_a_configured_key_is_used_and_a_short_one_refused(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, extra={"AUDIFI_TEST_KEY": "ab" * 32})
    assert service_key(settings, "AUDIFI_TEST_KEY", "test.key") == bytes.fromhex("ab" * 32)
    assert not (tmp_path / "test.key").exists()
    with pytest.raises(RuntimeError):
        service_key(
            Settings(var_dir=tmp_path, extra={"AUDIFI_TEST_KEY": "ab" * 8}),
            "AUDIFI_TEST_KEY",
            "test.key",
        )


def test_without_one_a_key_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = service_key(settings, "AUDIFI_TEST_KEY_UNSET", "test.key")
    assert len(first) == 32
    assert service_key(settings, "AUDIFI_TEST_KEY_UNSET", "test.key") == first
    assert (
        service_key(Settings(var_dir=tmp_path / "other"), "AUDIFI_TEST_KEY_UNSET", "test.key")
        != first
    )
    (tmp_path / "test.key").write_text("00")
    with pytest.raises(RuntimeError):
        service_key(settings, "AUDIFI_TEST_KEY_UNSET", "test.key")
