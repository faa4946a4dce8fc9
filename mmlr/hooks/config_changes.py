"""What changed between the config a checkpoint was written with and the
config of the run that resumes it."""
from mmengine.config import Config

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
