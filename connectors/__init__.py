"""Built-in connectors, one package per peer.

Each registers through the ``tongdao.connectors`` entry points, as a third-party one would.
"""
