"""Settings come from EVBUS_* variables and evbus.toml; the README's table is generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from evbus.settings import Settings, SettingsError, load, settings_table

REPO = Path(__file__).resolve().parents[2]


def test_defaults_need_no_setting(tmp_path: Path) -> None:
    settings = load({}, toml_path=tmp_path / "absent.toml")
    assert settings == Settings()
    assert settings.ocpp_port == 9000
    assert settings.unknown_tokens == "reject"


def test_environment_values_are_converted(tmp_path: Path) -> None:
    settings = load(
        {
            "EVBUS_DATA_DIR": "/var/lib/evbus",
            "EVBUS_OCPP_PORT": "0",
            "EVBUS_CALL_TIMEOUT": "2.5",
            "EVBUS_UNKNOWN_STATIONS": "reject",
        },
        toml_path=tmp_path / "absent.toml",
    )
    assert settings.data_dir == Path("/var/lib/evbus")
    assert settings.ocpp_port == 0
    assert settings.call_timeout == 2.5
    assert settings.unknown_stations == "reject"


def test_toml_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    toml = tmp_path / "evbus.toml"
    toml.write_text("ocpp_port = 9100\nheartbeat_interval = 60\n")
    settings = load({"EVBUS_OCPP_PORT": "9200"}, toml_path=toml)
    assert settings.ocpp_port == 9200
    assert settings.heartbeat_interval == 60


@pytest.mark.parametrize(
    ("environ", "named"),
    [({"EVBUS_OCPP_PORT": "nine"}, "ocpp_port"), ({"EVBUS_UNKNOWN_TOKENS": "maybe"}, "unknown_tokens")],
)
def test_bad_values_name_the_setting(tmp_path: Path, environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load(environ, toml_path=tmp_path / "absent.toml")


def test_unknown_toml_keys_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "evbus.toml"
    toml.write_text("ocpp_prot = 1\n")
    with pytest.raises(SettingsError, match="ocpp_prot"):
        load({}, toml_path=toml)


def test_the_readme_settings_table_is_current() -> None:
    assert settings_table() in (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://evbus:s3cret@nats.example:4222", "nats://nats.example:4222"),
        ("tls://token@[::1]:4222", "tls://[::1]:4222"),
        ("nats://user:p%40ss@host", "nats://host"),
    ],
)
def test_a_nats_url_is_printed_without_its_credentials(url: str, shown: str) -> None:
    from evbus.bootstrap import without_credentials

    assert without_credentials(url) == shown
