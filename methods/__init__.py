"""Compression algorithms: tensors and nn.Modules only (no files, configs or datasets)."""
from acbench.compat import install_import_hooks  # must precede any torchvision import

install_import_hooks()

from methods.attention_heads import attention_layers, num_heads_per_layer, register_adapter  # noqa: E402
from methods.head_masking import mask_heads  # noqa: E402
from methods.head_removal import remove_heads, removed_heads  # noqa: E402

__all__ = ["attention_layers", "mask_heads", "num_heads_per_layer", "register_adapter", "remove_heads",
           "removed_heads"]
