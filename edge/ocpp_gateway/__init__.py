"""OCPP 1.6J / 2.0.1 server for the site's wallboxes. Entry point: ``Gateway``."""
from edge.ocpp_gateway.server import Gateway

__all__ = ["Gateway"]
