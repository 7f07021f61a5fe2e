"""The meter node: a MicroPython board that reads meters over Modbus RTU and publishes
their registers to the gateway's broker. Portable: runs on MicroPython and CPython
(see app.py). Nothing here imports an adapter of the gateway."""
