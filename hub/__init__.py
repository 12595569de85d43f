"""Tongdao: the hub that wires connectors, the normalizer and the ticket core together."""
