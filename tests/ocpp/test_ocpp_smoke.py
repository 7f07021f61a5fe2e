from ocpp_wallbox import connect


async def test_boot_16(gateway):
    c = await connect(gateway.port, "CP16", "1.6", "secret-16")
    st = gateway.station_status()["CP16"]
    assert st["connected"] and st["booted"]
    assert st["boot"] == {"vendor": "TestVendor", "model": "TB-16", "firmware": "1.2.3",
                          "serial": "SN16"}
    await c.close()


async def test_boot_201(gateway):
    c = await connect(gateway.port, "CP201", "2.0.1", "secret-201")
    st = gateway.station_status()["CP201"]
    assert st["connected"] and st["booted"]
    await c.close()
