"""``paramwise_cfg`` entries that match nothing in the model.

Only the model's parameter names tell whether a freeze path, a custom key or
a depth rule applies to anything. An entry that applies to nothing (mmengine
ignores such a custom key) trains with other settings than the config says,
without a word. Here a freeze or keep path that matches nothing is an error;
a custom key or a depth rule that matches nothing, and a layer decay that
decays nothing, are a warning each. The errors and the custom-key warning
name the nearest real path where one is close.
"""
import re

from .layer_ids import LayerDepths
from .param_rules import path_match
from .paramwise_cfg import nearest


def module_paths(names: list) -> list:
    """Every run of whole components of the names, sorted.

    Custom keys and freeze patterns may match anywhere in a name, so
    ``'haed'`` should find ``'head'`` as well as ``'backbone.head'``.
    """
    paths = set()
    for name in names:
        parts = name.split('.')
        for i in range(len(parts)):
            for j in range(i + 1, len(parts) + 1):
                paths.add('.'.join(parts[i:j]))
    return sorted(paths)


def nearest_path(word: str, names: list) -> str:
    """``" (did you mean 'backbone.head'?)"`` for ``'backbone.haed'``."""
    return nearest(word.strip('.'), module_paths(names))


def check_freeze(names: list, freeze: list, keep_trainable: list,
                 model_name: str) -> None:
    """Raise if a ``freeze`` or ``keep_trainable`` path matches nothing.

    Args:
        names (list[str]): All parameter names, frozen ones included (the
            check must pass again when the model was frozen before).
        freeze (list[str]): The ``freeze`` paths.
        keep_trainable (list[str]): The ``keep_trainable`` paths.
        model_name (str): For the message.

    Raises:
        ValueError: naming the path and the nearest real one.
    """
    for pattern in freeze:
        if not any(path_match(n, pattern) for n in names):
            raise ValueError(
                f'paramwise_cfg.freeze path {pattern!r} matches no parameter '
                f'of {model_name}{nearest_path(pattern, names)}; a path is '
                'whole components of parameter names, such as the module '
                "path 'backbone.patch_embed' or 'levels.1' (not levels.10)")
    frozen = [n for n in names if any(path_match(n, p) for p in freeze)]
    for pattern in keep_trainable:
        if not any(path_match(n, pattern) for n in frozen):
            raise ValueError(
                f'paramwise_cfg.keep_trainable path {pattern!r} matches no '
                f'parameter that freeze={freeze} freezes, so it keeps '
                f'nothing trainable{nearest_path(pattern, frozen)}')


def unmatched_custom_keys(names: list, custom_keys: dict,
                          model_name: str) -> list:
    """A warning per ``custom_keys`` key found in no parameter name."""
    # The test of ParamRules: a substring of the name with a leading dot.
    dotted = ['.' + n for n in names]
    return [
        f'paramwise_cfg.custom_keys[{key!r}] matches no parameter of '
        f'{model_name} and sets nothing{nearest_path(key, names)}'
        for key in custom_keys if not any(key in n for n in dotted)
    ]


def unmatched_depth_rules(names: list, rules: list) -> list:
    """A warning per ``depth_rules`` regex found in no parameter name."""
    return [
        f'paramwise_cfg.depth_rules ({pattern!r}, {depth}) matches no '
        'parameter name; the names it was meant for get another depth or '
        'the full lr'
        for pattern, depth in rules
        if not any(re.search(pattern, n) for n in names)
    ]


def _deepest(names) -> str:
    """The first of the names with the most components: a block's."""
    return max(names, key=lambda n: n.count('.'))


def decays_nothing(depths: LayerDepths, rate: float,
                   trunk_paths: list) -> str | None:
    """A warning when layer decay put every parameter at the top layer.

    Args:
        depths (LayerDepths): The ids of every parameter (frozen included,
            so a frozen backbone under a trainable head is not reported).
        rate (float): The layer decay rate.
        trunk_paths (list[str]): The backbone paths searched for a trunk.

    Returns:
        str | None: The warning, or None when some parameter decays.
    """
    if rate >= 1 or not depths.ids or any(
            d < n - 1 for d, n in depths.ids.values()):
        return None
    reason = {
        'trunk': 'no run of repeated blocks was found in '
        f'{", ".join(repr(p) for p in trunk_paths)}',
        'rules': 'no depth_rules regex matches a parameter name',
    }.get(depths.source, f'{depths.source} put every parameter at the top')
    return (f'layer decay (rate {rate}) decays nothing: {reason}, so every '
            'group got the full lr. Give depths with paramwise_cfg.'
            'depth_rules=[(regex, depth), ...] (regexes are searched in '
            f'parameter names such as {_deepest(depths.ids)!r}), '
            "backbone='<path of the module holding the blocks>' or a "
            'get_layer_depth(name) method on the model')
