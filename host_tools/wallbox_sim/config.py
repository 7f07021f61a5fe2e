"""Configuration keys of a simulated wallbox.

Names are the OCPP 1.6 keys; OCPP 2.0.1 variables map onto the same values
(see `V201_VARIABLES`), so both versions read and change one store.
"""
from __future__ import annotations

from .model import StationSpec

INT, BOOL, TEXT = "int", "bool", "text"


def initial(spec: StationSpec) -> dict[str, dict]:
    """{key: {"value": str, "type": ..., "readonly": bool}}."""
    profiles = "Core,LocalAuthListManagement,RemoteTrigger"
    if spec.accept_profiles:
        profiles += ",SmartCharging"
    keys = {
        "HeartbeatInterval": (str(spec.heartbeat_s or 300), INT, False),
        "MeterValueSampleInterval": (str(spec.meter_interval_s), INT, False),
        "MeterValuesSampledData": ("Energy.Active.Import.Register,Current.Import,Power.Active.Import",
                                   TEXT, False),
        # Core keys of 1.6 (and their 2.0.1 variables below) the edge sets at boot so a
        # session's closing energy reading comes with its stop: supported, as real boxes do.
        "StopTxnSampledData": ("Energy.Active.Import.Register", TEXT, False),
        "TxStartedMeasurands": ("Energy.Active.Import.Register", TEXT, False),
        "NumberOfConnectors": (str(len(spec.connectors)), INT, True),
        "SupportedFeatureProfiles": (profiles, TEXT, True),
        "LocalAuthListEnabled": ("true", BOOL, False),
        "LocalAuthListMaxLength": (str(spec.local_list_max), INT, True),
        "SendLocalListMaxLength": (str(spec.local_list_per_message), INT, True),
        "LocalAuthorizeOffline": ("true", BOOL, False),
        "LocalPreAuthorize": ("false", BOOL, False),
        "AllowOfflineTxForUnknownId": ("false", BOOL, False),
        "AuthorizeRemoteTxRequests": ("false", BOOL, False),
        "StopTransactionOnInvalidId": ("true", BOOL, False),
        "ChargeProfileMaxStackLevel": ("8", INT, True),
        "ChargingScheduleAllowedChargingRateUnit": ("Current,Power", TEXT, True),
        "ChargingScheduleMaxPeriods": (str(spec.max_periods), INT, True),
        "MaxChargingProfilesInstalled": (str(spec.max_profiles), INT, True),
    }
    return {k: {"value": v, "type": t, "readonly": ro} for k, (v, t, ro) in keys.items()}


# (component, variable) -> (1.6 key or a special source, readonly)
V201_VARIABLES = {
    ("OCPPCommCtrlr", "HeartbeatInterval"): "HeartbeatInterval",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "MeterValueSampleInterval",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): "MeterValuesSampledData",
    ("SampledDataCtrlr", "TxStartedMeasurands"): "TxStartedMeasurands",
    ("SampledDataCtrlr", "TxEndedMeasurands"): "StopTxnSampledData",
    ("LocalAuthListCtrlr", "Enabled"): "LocalAuthListEnabled",
    ("LocalAuthListCtrlr", "Available"): "=true",
    ("LocalAuthListCtrlr", "Entries"): "=entries",
    ("LocalAuthListCtrlr", "ItemsPerMessage"): "SendLocalListMaxLength",
    ("LocalAuthListCtrlr", "BytesPerMessage"): "=bytes_per_message",
    ("AuthCtrlr", "LocalAuthorizeOffline"): "LocalAuthorizeOffline",
    ("AuthCtrlr", "LocalPreAuthorize"): "LocalPreAuthorize",
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "AllowOfflineTxForUnknownId",
    ("AuthCtrlr", "AuthorizeRemoteStart"): "AuthorizeRemoteTxRequests",
    ("TxCtrlr", "StopTxOnInvalidId"): "StopTransactionOnInvalidId",
    ("SmartChargingCtrlr", "Enabled"): "=smart_charging",
    ("SmartChargingCtrlr", "Entries"): "=profiles",
    ("SmartChargingCtrlr", "ProfileStackLevel"): "ChargeProfileMaxStackLevel",
    ("SmartChargingCtrlr", "PeriodsPerSchedule"): "ChargingScheduleMaxPeriods",
    ("SmartChargingCtrlr", "RateUnit"): "=rate_unit",
}


def check_value(key: str, entry: dict, value) -> str:
    """The normalized text to store, or raise ValueError naming key and value."""
    if not isinstance(value, str):
        raise ValueError("%s: must be text (got %r)" % (key, value))
    if entry["type"] == INT:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError("%s: must be an integer (got %r)" % (key, value)) from None
        if number < 0:
            raise ValueError("%s: must be >= 0 (got %r)" % (key, value))
        return str(number)
    if entry["type"] == BOOL:
        low = value.strip().lower()
        if low not in ("true", "false"):
            raise ValueError("%s: must be true or false (got %r)" % (key, value))
        return low
    if len(value) > 500:
        raise ValueError("%s: longer than 500 characters (got %d)" % (key, len(value)))
    return value
