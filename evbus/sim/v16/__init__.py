"""OCPP 1.6 (with the security extension): the CSMS's CALLs a simulated charge point answers."""

from __future__ import annotations

from typing import Final

from evbus.sim import reservations
from evbus.sim.effects import Handler
from evbus.sim.v16 import certificates, configuration, core, firmware, local_list, smart_charging, transactions

ROUTES: Final[dict[str, Handler]] = {
    "CancelReservation": reservations.cancel_reservation,
    "CertificateSigned": certificates.certificate_signed,
    "ChangeAvailability": core.change_availability,
    "ChangeConfiguration": configuration.change_configuration,
    "ClearCache": core.clear_cache,
    "ClearChargingProfile": smart_charging.clear_charging_profile,
    "DataTransfer": core.data_transfer,
    "DeleteCertificate": certificates.delete_certificate,
    "ExtendedTriggerMessage": core.extended_trigger_message,
    "GetCompositeSchedule": smart_charging.get_composite_schedule,
    "GetConfiguration": configuration.get_configuration,
    "GetDiagnostics": firmware.get_diagnostics,
    "GetInstalledCertificateIds": certificates.get_installed_certificate_ids,
    "GetLocalListVersion": local_list.get_local_list_version,
    "GetLog": firmware.get_log,
    "InstallCertificate": certificates.install_certificate,
    "RemoteStartTransaction": transactions.remote_start_transaction,
    "RemoteStopTransaction": transactions.remote_stop_transaction,
    "ReserveNow": transactions.reserve_now,
    "Reset": core.reset,
    "SendLocalList": local_list.send_local_list,
    "SetChargingProfile": smart_charging.set_charging_profile,
    "SignedUpdateFirmware": firmware.signed_update_firmware,
    "TriggerMessage": core.trigger_message,
    "UnlockConnector": core.unlock_connector,
    "UpdateFirmware": firmware.update_firmware,
}
