"""acbench: replication harness for attention-centric model compression (the engine package)."""
from acbench.compat import install_import_hooks

install_import_hooks()

__version__ = "0.1.0"
