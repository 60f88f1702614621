"""OCPP 2.0.1 and 2.1: the CSMS's CALLs a simulated charging station answers."""

from __future__ import annotations

from typing import Final

from evbus.sim import reservations
from evbus.sim.effects import Handler
from evbus.sim.v2 import (
    certificates,
    core,
    device_model,
    display,
    firmware,
    local_list,
    smart_charging,
    transactions,
    v21,
)
from evbus.sim.v16 import core as v16_core

ROUTES_201: Final[dict[str, Handler]] = {
    "CancelReservation": reservations.cancel_reservation,
    "CertificateSigned": certificates.certificate_signed,
    "ChangeAvailability": core.change_availability,
    "ClearCache": v16_core.clear_cache,  # the same in every version
    "ClearChargingProfile": smart_charging.clear_charging_profile,
    "ClearDisplayMessage": display.clear_display_message,
    "ClearVariableMonitoring": device_model.clear_variable_monitoring,
    "CostUpdated": core.cost_updated,
    "CustomerInformation": display.customer_information,
    "DataTransfer": v16_core.data_transfer,
    "DeleteCertificate": certificates.delete_certificate,
    "GetBaseReport": device_model.get_base_report,
    "GetChargingProfiles": smart_charging.get_charging_profiles,
    "GetCompositeSchedule": smart_charging.get_composite_schedule,
    "GetDisplayMessages": display.get_display_messages,
    "GetInstalledCertificateIds": certificates.get_installed_certificate_ids,
    "GetLocalListVersion": local_list.get_local_list_version,
    "GetLog": firmware.get_log,
    "GetMonitoringReport": device_model.get_monitoring_report,
    "GetReport": device_model.get_report,
    "GetTransactionStatus": core.get_transaction_status,
    "GetVariables": device_model.get_variables,
    "InstallCertificate": certificates.install_certificate,
    "PublishFirmware": firmware.publish_firmware,
    "RequestStartTransaction": transactions.request_start_transaction,
    "RequestStopTransaction": transactions.request_stop_transaction,
    "ReserveNow": transactions.reserve_now,
    "Reset": core.reset,
    "SendLocalList": local_list.send_local_list,
    "SetChargingProfile": smart_charging.set_charging_profile,
    "SetDisplayMessage": display.set_display_message,
    "SetMonitoringBase": device_model.set_monitoring_base,
    "SetMonitoringLevel": device_model.set_monitoring_level,
    "SetNetworkProfile": core.set_network_profile,
    "SetVariableMonitoring": device_model.set_variable_monitoring,
    "SetVariables": device_model.set_variables,
    "TriggerMessage": core.trigger_message,
    "UnlockConnector": core.unlock_connector,
    "UnpublishFirmware": firmware.unpublish_firmware,
    "UpdateFirmware": firmware.update_firmware,
}

ROUTES_21: Final[dict[str, Handler]] = ROUTES_201 | {
    "AFRRSignal": v21.afrr_signal,
    "AdjustPeriodicEventStream": v21.adjust_periodic_event_stream,
    "ChangeTransactionTariff": v21.change_transaction_tariff,
    "ClearDERControl": v21.der_not_supported,
    "ClearTariffs": v21.clear_tariffs,
    "GetDERControl": v21.der_not_supported,
    "GetPeriodicEventStream": v21.get_periodic_event_stream,
    "GetTariffs": v21.get_tariffs,
    "NotifyAllowedEnergyTransfer": v21.notify_allowed_energy_transfer,
    "NotifyWebPaymentStarted": v21.notify_web_payment_started,
    "RequestBatterySwap": v21.request_battery_swap,
    "SetDERControl": v21.der_not_supported,
    "SetDefaultTariff": v21.set_default_tariff,
    "UpdateDynamicSchedule": v21.update_dynamic_schedule,
    "UsePriorityCharging": v21.use_priority_charging,
}
