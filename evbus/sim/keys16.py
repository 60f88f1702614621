"""The 1.6 configuration keys of a simulated charge point (OCPP 1.6 §9): GetConfiguration reads
them, ChangeConfiguration writes them, and the station's behaviour follows them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

Kind = Literal["int", "bool", "text", "list"]
ChangeStatus = Literal["Accepted", "Rejected", "RebootRequired", "NotSupported"]


@dataclass(frozen=True, slots=True)
class Key:
    value: str
    kind: Kind = "int"
    readonly: bool = False
    reboot: bool = False  # a change takes effect after a reboot


MEASURANDS: Final = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"

DEFAULTS: Final[dict[str, Key]] = {
    "AllowOfflineTxForUnknownId": Key("false", "bool"),
    "AuthorizationCacheEnabled": Key("false", "bool"),
    "AuthorizeRemoteTxRequests": Key("false", "bool"),
    "ChargeProfileMaxStackLevel": Key("8", readonly=True),
    "ChargingScheduleAllowedChargingRateUnit": Key("Current,Power", "list", readonly=True),
    "ChargingScheduleMaxPeriods": Key("24", readonly=True),
    "ClockAlignedDataInterval": Key("0"),
    "ConnectionTimeOut": Key("60"),
    "ConnectorPhaseRotation": Key("0.RST,1.RST,2.RST", "list"),
    "GetConfigurationMaxKeys": Key("64", readonly=True),
    "HeartbeatInterval": Key("300"),
    "LocalAuthListEnabled": Key("true", "bool"),
    "LocalAuthListMaxLength": Key("1000", readonly=True),
    "LocalAuthorizeOffline": Key("true", "bool"),
    "LocalPreAuthorize": Key("false", "bool"),
    "MaxChargingProfilesInstalled": Key("16", readonly=True),
    "MeterValueSampleInterval": Key("5"),
    "MeterValuesAlignedData": Key("Energy.Active.Import.Register", "list"),
    "MeterValuesSampledData": Key(MEASURANDS, "list"),
    "MinimumStatusDuration": Key("0"),
    "NumberOfConnectors": Key("2", readonly=True),
    "ReserveConnectorZeroSupported": Key("false", "bool", readonly=True),
    "ResetRetries": Key("3"),
    "SendLocalListMaxLength": Key("100", readonly=True),
    "StopTransactionOnEVSideDisconnect": Key("true", "bool"),
    "StopTransactionOnInvalidId": Key("true", "bool"),
    "StopTxnAlignedData": Key("", "list"),
    "StopTxnSampledData": Key("Energy.Active.Import.Register", "list"),
    "SupportedFeatureProfiles": Key(
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger", "list", readonly=True
    ),
    "TransactionMessageAttempts": Key("3"),
    "TransactionMessageRetryInterval": Key("30"),
    "UnlockConnectorOnEVSideDisconnect": Key("true", "bool"),
    "WebSocketPingInterval": Key("0", reboot=True),
}


class KeyStore:
    """The defaults are shared by every station; a station stores only the values it changed."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, name: str) -> Key | None:
        key = DEFAULTS.get(name)
        value = self._values.get(name)
        return key if key is None or value is None else replace(key, value=value)

    def names(self) -> list[str]:
        return list(DEFAULTS)

    def value(self, name: str) -> str:
        return self._values.get(name, DEFAULTS[name].value)

    def integer(self, name: str) -> int:
        return int(self.value(name))

    def flag(self, name: str) -> bool:
        return self.value(name) == "true"

    def put(self, name: str, value: str) -> None:
        self._values[name] = value

    def change(self, name: str, value: str) -> ChangeStatus:
        """ChangeConfiguration: validate ``value`` against the key's kind and store it."""
        key = DEFAULTS.get(name)
        if key is None:
            return "NotSupported"
        if key.readonly:
            return "Rejected"
        if key.kind == "int":
            if not value.strip().isdigit():
                return "Rejected"
            value = str(int(value))
        elif key.kind == "bool":
            if value.lower() not in ("true", "false"):
                return "Rejected"
            value = value.lower()
        self._values[name] = value
        return "RebootRequired" if key.reboot else "Accepted"
