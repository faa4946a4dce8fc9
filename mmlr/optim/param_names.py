"""How the constructor reads parameter names.

Names are compared without the levels wrappers insert (FSDP, activation
checkpointing, ``torch.compile``), matched against module paths by whole
components, and read relative to the backbone that owns them.
"""
import re

# Wrapper modules that insert a level into parameter names.
WRAPPER_PARTS = re.compile(
    r'(?:_fsdp_wrapped_module|_checkpoint_wrapped_module|_orig_mod)\.')


def strip_wrappers(name: str) -> str:
    """``'blocks.0._fsdp_wrapped_module.attn.qkv.weight'`` -> without it."""
    return WRAPPER_PARTS.sub('', name)


def path_match(name: str, pattern: str) -> bool:
    """Whether ``pattern`` is a run of whole components of ``name``.

    ``'levels.1'`` matches ``'backbone.levels.1.conv.weight'`` but not
    ``'backbone.levels.10.conv.weight'``.
    """
    return f'.{pattern}.' in f'.{name}.'


def relative_name(name: str, path: str) -> str | None:
    """``name`` relative to the module at ``path`` (``''``: the model), or
    None when the parameter is not inside that module."""
    if not path:
        return name
    return name[len(path) + 1:] if name.startswith(path + '.') else None


def join_path(path: str, name: str) -> str:
    """``'backbone'`` + ``'blocks'`` -> ``'backbone.blocks'``."""
    return f'{path}.{name}' if path and name else path or name
