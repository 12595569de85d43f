"""Built-in connectors, one package per peer; each registers through the `tongdao.connectors` entry points."""
