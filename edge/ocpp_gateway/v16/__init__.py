"""OCPP 1.6J wire translator."""
