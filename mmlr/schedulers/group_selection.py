"""Which optimizer groups a :class:`~mmlr.schedulers.GroupSelect` moves:
the ``groups`` setting, checked, and resolved against an optimizer."""
import difflib
import hashlib
import re
from numbers import Integral

#: what ``groups`` may hold; several keys select the groups matching all
SELECTION_KEYS = ('role', 'layer_ids', 'names', 'indices')
ROLES = ('head', 'backbone')
LAYER_IDS_NEEDED = (
    'needs the layer ids that '
    'constructor=\'LayerDecayOptimWrapperConstructor\' gives each '
    'optimizer group with paramwise_cfg.layer_decay_rate (1.0 gives the ids '
    'without decaying)')


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_selection(groups) -> dict:
    """Return ``groups`` as a plain dict after checking every key and value;
    raise a ``ValueError``/``TypeError`` naming the offending key."""
    if not isinstance(groups, dict) or not groups:
        raise TypeError(
            f'groups must be a dict with one or more of {list(SELECTION_KEYS)}'
            f', got {groups!r}')
    spec = dict(groups)
    for key in spec:
        if key not in SELECTION_KEYS:
            near = difflib.get_close_matches(str(key), SELECTION_KEYS, 1)
            hint = f' (did you mean {near[0]!r}?)' if near else ''
            raise ValueError(f'groups.{key} is not a selection key{hint}; '
                             f'accepted: {", ".join(SELECTION_KEYS)}')
    if 'role' in spec and spec['role'] not in ROLES:
        raise ValueError(f'groups.role must be one of {", ".join(ROLES)}, '
                         f'got {spec["role"]!r}')
    if 'layer_ids' in spec:
        ids = spec['layer_ids']
        if not (isinstance(ids, (list, tuple)) and len(ids) == 2 and all(
                _is_int(i) and i >= 0 for i in ids) and ids[0] <= ids[1]):
            raise ValueError(
                'groups.layer_ids must be [first, last], two layer ids >= 0 '
                f'with first <= last (both included), got {ids!r}')
        spec['layer_ids'] = [int(i) for i in ids]
    if 'names' in spec:
        pattern = spec['names']
        if not isinstance(pattern, str) or not pattern:
            raise TypeError('groups.names must be a regular expression (a '
                            f'non-empty str), got {pattern!r}')
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f'groups.names={pattern!r} is not a regular '
                             f'expression: {error}') from None
    if 'indices' in spec:
        indices = spec['indices']
        if isinstance(indices, Integral) and not isinstance(indices, bool):
            indices = [indices]
        if not (isinstance(indices, (list, tuple)) and indices and all(
                _is_int(i) and i >= 0 for i in indices)
                and len(set(indices)) == len(indices)):
            raise ValueError('groups.indices must be a list of distinct '
                             f'group indices >= 0, got {spec["indices"]!r}')
        spec['indices'] = sorted(int(i) for i in indices)
    return spec


def select_groups(spec: dict, param_groups: list,
                  names: list | None) -> list[int]:
    """The indices of the groups ``spec`` selects (all its keys at once).

    Args:
        spec (dict): A checked selection (:func:`check_selection`).
        param_groups (list[dict]): The optimizer's groups (without
            ``OptimWrapper``'s base group).
        names (list[list[str]] | None): Each group's parameter names, or
            None when they were not recorded.

    Raises:
        ValueError: A key the optimizer cannot answer (no layer ids, no
            names), a name pattern that splits a group, an index out of
            range, or a selection that matches no group.
    """
    chosen = list(range(len(param_groups)))
    described = f'groups={spec!r}'
    if 'role' in spec or 'layer_ids' in spec:
        key = 'role' if 'role' in spec else 'layer_ids'
        ids = [g.get('layer_id') for g in param_groups]
        if None in ids or not all(_is_int(i) for i in ids):
            raise ValueError(f'groups.{key} {LAYER_IDS_NEEDED}; these groups '
                             'have none: select by groups.names or '
                             'groups.indices')
        if 'role' in spec:
            top = max(ids)
            if spec['role'] == 'backbone' and min(ids) == top:
                raise ValueError(
                    'groups.role=\'backbone\' matches no optimizer group: '
                    f'every group has layer id {top}, the head\'s; '
                    f'groups.role {LAYER_IDS_NEEDED}')
            head = spec['role'] == 'head'
            chosen = [i for i in chosen if (ids[i] == top) == head]
        if 'layer_ids' in spec:
            first, last = spec['layer_ids']
            chosen = [i for i in chosen if first <= ids[i] <= last]
    if 'names' in spec:
        if names is None:
            raise ValueError(
                'groups.names needs the parameter names of the optimizer\'s '
                'groups, which are recorded by tools/train.py and by '
                'constructor=\'LayerDecayOptimWrapperConstructor\'; elsewhere '
                'call mmlr.optim.record_param_names(model) before building '
                'the schedulers, or select by groups.indices')
        pattern = re.compile(spec['names'])
        kept = []
        for i in chosen:
            hits = [bool(pattern.search(n)) for n in names[i]]
            if all(hits):
                kept.append(i)
            elif any(hits):
                raise ValueError(
                    f'groups.names={spec["names"]!r} matches some parameters '
                    f'of optimizer group {i} ({names[i][hits.index(True)]}) '
                    f'but not others ({names[i][hits.index(False)]}); a '
                    'scheduler moves whole groups: widen or narrow the '
                    'pattern, or give those parameters groups of their own '
                    '(paramwise_cfg.custom_keys)')
        chosen = kept
    if 'indices' in spec:
        beyond = [i for i in spec['indices'] if i >= len(param_groups)]
        if beyond:
            raise ValueError(
                f'groups.indices {beyond} beyond the optimizer\'s '
                f'{len(param_groups)} groups (0 to {len(param_groups) - 1})')
        chosen = [i for i in chosen if i in spec['indices']]
    if not chosen:
        raise ValueError(f'{described} matches no optimizer group '
                         f'({describe_groups(param_groups, names)})')
    return chosen


def describe_groups(param_groups: list, names: list | None) -> str:
    """A short account of the groups, for errors."""
    parts = [f'{len(param_groups)} groups']
    ids = [g.get('layer_id') for g in param_groups]
    if None not in ids:
        parts.append(f'layer ids {min(ids)} to {max(ids)}')
    if names:
        parts.append('e.g. ' + ', '.join(n[0] for n in names[:3] if n))
    return '; '.join(parts)


def names_fingerprint(names: list | None, indices: list) -> str | None:
    """A short digest of the parameter names of the selected groups (None
    when names were not recorded), to tell selections apart on resume."""
    if names is None:
        return None
    text = '\n'.join('\t'.join(names[i]) for i in indices)
    return hashlib.sha1(text.encode()).hexdigest()[:12]
