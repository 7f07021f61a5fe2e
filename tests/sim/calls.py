"""Version-specific calls the test central system sends to a simulated wallbox."""
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201


def profile(version, pid, purpose, limit, stack=0, unit="A", connector=0, tx_id=None,
            periods=None, kind="Relative", start_schedule=None):
    periods = periods or [(0, limit)]
    sched = {"charging_rate_unit": unit,
             "charging_schedule_period": [{"start_period": s, "limit": l} for s, l in periods]}
    if start_schedule:
        sched["start_schedule"] = start_schedule
    if version == "1.6":
        purpose = {"max": "ChargePointMaxProfile"}.get(purpose, purpose)
        body = {"charging_profile_id": pid, "stack_level": stack,
                "charging_profile_purpose": purpose, "charging_profile_kind": kind,
                "charging_schedule": sched}
        if tx_id is not None:
            body["transaction_id"] = int(tx_id)
        return c16.SetChargingProfile(connector_id=connector, cs_charging_profiles=body)
    purpose = {"max": "ChargingStationMaxProfile"}.get(purpose, purpose)
    sched["id"] = pid
    body = {"id": pid, "stack_level": stack, "charging_profile_purpose": purpose,
            "charging_profile_kind": kind, "charging_schedule": [sched]}
    if tx_id is not None:
        body["transaction_id"] = str(tx_id)
    return c201.SetChargingProfile(evse_id=connector, charging_profile=body)


def clear_profile(version, pid):
    if version == "1.6":
        return c16.ClearChargingProfile(id=pid)
    return c201.ClearChargingProfile(charging_profile_id=pid)


def remote_start(version, tag, connector):
    if version == "1.6":
        return c16.RemoteStartTransaction(id_tag=tag, connector_id=connector)
    return c201.RequestStartTransaction(id_token={"id_token": tag, "type": "Central"},
                                        remote_start_id=77, evse_id=connector)


def remote_stop(version, tx_id):
    if version == "1.6":
        return c16.RemoteStopTransaction(transaction_id=int(tx_id))
    return c201.RequestStopTransaction(transaction_id=str(tx_id))


def send_list(version, list_version, entries, full=True):
    """entries: [(uid, status or None)]"""
    if version == "1.6":
        items = [{"id_tag": u} if s is None else {"id_tag": u, "id_tag_info": {"status": s}}
                 for u, s in entries]
        return c16.SendLocalList(list_version=list_version, local_authorization_list=items,
                                 update_type="Full" if full else "Differential")
    items = [{"id_token": {"id_token": u, "type": "ISO14443"}} if s is None else
             {"id_token": {"id_token": u, "type": "ISO14443"}, "id_token_info": {"status": s}}
             for u, s in entries]
    return c201.SendLocalList(version_number=list_version, local_authorization_list=items,
                              update_type="Full" if full else "Differential")


def list_version(version):
    return c16.GetLocalListVersion() if version == "1.6" else c201.GetLocalListVersion()


def version_of(version, res):
    return res.list_version if version == "1.6" else res.version_number
