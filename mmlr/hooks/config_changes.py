"""What changed between the config a checkpoint was written with and the
config of the run that resumes it."""
import torch
from mmengine.config import Config
from mmengine.logging import print_log

#: config entries whose changes are named in the resume log
WATCHED_CONFIG = ('optim_wrapper', 'param_scheduler', 'auto_scale_lr',
                  'train_cfg', 'train_dataloader')


def flat_config(cfg, prefix: str = '') -> dict:
    """``{'a.b.0.c': value}`` for every leaf of nested dicts and lists."""
    if isinstance(cfg, dict):
        items = cfg.items()
    elif isinstance(cfg, (list, tuple)):
        items = enumerate(cfg)
    else:
        return {prefix: cfg}
    flat = {}
    for key, value in items:
        flat.update(flat_config(value, f'{prefix}.{key}' if prefix else
                                str(key)))
    return flat


def config_changes(saved_text: str | None, cfg) -> list[str]:
    """``'key old -> new'`` for every optimizer, scheduler, loop and data
    setting the checkpoint's config (``meta['cfg']``) and ``cfg`` differ
    in."""
    if not saved_text:
        return []
    try:
        saved = Config.fromstring(saved_text, file_format='.py')
    except Exception:  # an unparsable old config only costs the names
        return []
    changes = []
    for key in WATCHED_CONFIG:
        old = flat_config(saved.to_dict().get(key), key)
        new = flat_config(cfg.to_dict().get(key), key)
        for leaf in sorted(set(old) | set(new)):
            if old.get(leaf, '<unset>') != new.get(leaf, '<unset>'):
                # the key as --cfg-options spells it
                changes.append(f'{leaf} {old.get(leaf, "<unset>")!r} -> '
                               f'{new.get(leaf, "<unset>")!r}')
    return changes


def log_changes(changes: list[str], differ: list, where: str, kept: bool,
                values=None, targets=None) -> None:
    """One log line for a resume: the changed config settings and how many
    groups' values (``differ``: ``(group, key)`` pairs) they changed, or
    that the checkpoint's values were kept (``kept``)."""
    keys = {}
    for i, key in differ:
        keys.setdefault(key, []).append(i)
    counts = ', '.join(f"{len(v)} groups' {k}" for k, v in keys.items())
    settings = '; '.join(changes) or 'optimizer group values'
    if kept:
        print_log(
            f'Resume{where}: the config differs from the checkpoint '
            f'({settings}); keeping the checkpoint\'s values '
            f"(settings_from='checkpoint'): {counts or 'none'} differ "
            'from what the config would give', logger='current')
        return
    example = ''
    if differ:
        i, key = next(((i, k) for i, k in differ if k == 'lr'), differ[0])
        example = (f' (group {i} {key} {_short(values[i][key])} -> '
                   f'{_short(targets[i][key])})')
    print_log(
        f'Resume{where}: following the config, {settings}: '
        f"{counts or 'no group values'} changed{example}",
        logger='current')


def _short(value) -> str:
    return f'{value:.4g}' if isinstance(value, float) else repr(value)


def same_value(a, b) -> bool:
    """Whether two group values are equal (tensors by their contents)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    return a == b
