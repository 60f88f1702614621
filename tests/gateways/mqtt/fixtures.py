"""Captured example messages of each family, as ../shared/FORMATS.md gives them (topic, payload)."""

from __future__ import annotations

EVCC_STARTUP = """\
evcc/status|online
evcc/updated|1767225600
evcc/loadpoints|1
evcc/site/pvPower|4200
evcc/site/grid/power|-1250.5
evcc/loadpoints/1/title|Garage
evcc/loadpoints/1/connected|true
evcc/loadpoints/1/charging|true
evcc/loadpoints/1/enabled|true
evcc/loadpoints/1/mode|pv
evcc/loadpoints/1/chargePower|3680.5
evcc/loadpoints/1/chargeCurrents/l1|16.01
evcc/loadpoints/1/chargeCurrents/l2|0
evcc/loadpoints/1/chargeCurrents/l3|0
evcc/loadpoints/1/chargeCurrents|16.01
evcc/loadpoints/1/chargeVoltages/l1|231.2
evcc/loadpoints/1/chargeVoltages/l2|230.8
evcc/loadpoints/1/chargeVoltages/l3|231.1
evcc/loadpoints/1/chargeVoltages|693.1
evcc/loadpoints/1/phasesActive|1
evcc/loadpoints/1/sessionEnergy|2345.678
evcc/loadpoints/1/chargedEnergy|2345.678
evcc/loadpoints/1/chargeDuration|1820
evcc/loadpoints/1/chargeTotalImport|1234.567
evcc/loadpoints/1/vehicleSoc|55
evcc/loadpoints/1/vehicleName|
evcc/loadpoints/1/planTime|"""

EVCC_UNPLUG = """\
evcc/loadpoints/1/connected|false
evcc/loadpoints/1/charging|false
evcc/loadpoints/1/chargePower|0
evcc/loadpoints/1/mode/set|now
evcc/loadpoints/1/mode/set|
evcc/loadpoints/1/mode|now"""

GOE = """\
go-eCharger/012345/car|2
go-eCharger/012345/alw|true
go-eCharger/012345/amp|16
go-eCharger/012345/nrg|[231,230,232,0,16.1,16,16.2,3700,3680,3750,0,11130,99,99,99,0]
go-eCharger/012345/wh|5321.45
go-eCharger/012345/eto|1234567
go-eCharger/012345/err|0
go-eCharger/012345/utc|"2022-02-16T19:27:34.042.171"
go-eCharger/012345/amp/set|10"""

GOE_LEGACY = """\
/go-eCharger/000001/car|1
/go-eCharger/000001/nrg|[15,0,0,220,0,0,0,0,0,0,0,0,0,0,0,0]
/go-eCharger/000001/cdi|{"type":1,"value":0}
/go-eCharger/000001/trx|null"""

OPENEVSE = """\
openevse/announce/7b2c|{"state":"connected","id":"c44f330dxxad","name":"openevse-7b2c","mqtt":"openevse-7b2c","http":"http://192.168.1.43/"}
openevse-7b2c/state|3
openevse-7b2c/vehicle|1
openevse-7b2c/amp|15800
openevse-7b2c/voltage|240
openevse-7b2c/power|3792
openevse-7b2c/pilot|16
openevse-7b2c/session_energy|5321.4
openevse-7b2c/total_energy|1234.56
openevse-7b2c/temp|247"""

ESP32_HA_BRIDGE = (
    "evse/state",
    '{"state":"B2","charging":false,"enabled":true,"error":false,"power":0,"current":16,'
    '"session_energy":0,"temperature":31}',
)
ESP32_STATE_C2 = (
    '{"state":"C2","available":true,"enabled":true,"pendingAuth":false,"limitReached":false,'
    '"chargingCurrent":16,"consumptionLimit":0,"chargingTimeLimit":0,"underPowerLimit":0,'
    '"errors":null,"sessionTime":1820,"chargingTime":1740,"consumption":1779,"totalConsumption":412900,'
    '"power":3680,"voltage":[231.4,0,0],"current":[16,0,0]}'
)
ESP32_STATE_E = (
    '{"state":"E","available":true,"enabled":true,"pendingAuth":false,"limitReached":false,'
    '"chargingCurrent":16,"consumptionLimit":0,"chargingTimeLimit":0,"underPowerLimit":0,'
    '"errors":["rcm_triggered"],"sessionTime":0,"chargingTime":0,"consumption":0,"totalConsumption":412900,'
    '"power":0,"voltage":[0,0,0],"current":[0,0,0]}'
)

OPENWB = """\
openWB/chargepoint/3/get/power|11040.5
openWB/chargepoint/3/get/currents|[16.0,16.1,15.9]
openWB/chargepoint/3/get/voltages|[230.1,229.8,231.0]
openWB/chargepoint/3/get/imported|123456.7
openWB/chargepoint/3/get/plug_state|true
openWB/chargepoint/3/get/charge_state|true
openWB/chargepoint/3/get/phases_in_use|3
openWB/lp/1/W|11040
openWB/lp/1/boolPlugStat|1
openWB/lp/1/kWhCounter|1234.567"""

SHELLY_SWITCH = (
    "shellyplus1pm-a8032ab12345/status/switch:0",
    '{"id":0,"source":"init","output":true,"apower":3650.2,"voltage":231.4,"current":15.8,'
    '"aenergy":{"total":123456.789,"by_minute":[60.1,60.0,59.9],"minute_ts":1786033200},'
    '"temperature":{"tC":46.3,"tF":115.4}}',
)
SHELLY_3EM = (
    "shellypro3em-0cb815fcaf1c/status/em:0",
    '{"id":0,"a_current":16.0,"a_voltage":231.0,"a_act_power":3690,"b_current":16.1,"b_voltage":230.2,'
    '"b_act_power":3700,"c_current":15.9,"c_voltage":231.5,"c_act_power":3680,"total_act_power":11070}',
)

TASMOTA = """\
tele/plug001/SENSOR|{"Time":"2024-05-01T12:00:00","ENERGY":{"TotalStartTime":"2023-01-01T00:00:00","Total":123.456,"Yesterday":0.923,"Today":0.337,"Power":367,"ApparentPower":507,"ReactivePower":350,"Factor":0.72,"Voltage":235,"Current":2.156}}
tele/plug001/LWT|Online"""


def lines(block: str, **replace: str) -> list[tuple[str, bytes]]:
    """``topic|payload`` lines as messages; ``replace`` renames parts (fresh ids per test)."""
    out = []
    for line in block.splitlines():
        topic, _, payload = line.partition("|")
        for old, new in replace.items():
            topic = topic.replace(old, new)
            payload = payload.replace(old, new)
        out.append((topic, payload.encode()))
    return out
