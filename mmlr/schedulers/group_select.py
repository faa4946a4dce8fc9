"""``GroupSelect``: any scheduler, mmengine's or mmlr's, moving only the
optimizer groups a config selects."""
import weakref

import torch
from mmengine.optim.scheduler.param_scheduler import (
    ConstantParamScheduler, ExponentialParamScheduler, LinearParamScheduler,
    MultiStepParamScheduler, StepParamScheduler, _ParamScheduler)
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS

from ..optim.group_names import group_param_names
from ..registry import PARAM_SCHEDULERS
from .base import plain
from .group_selection import check_selection, names_fingerprint, select_groups
from .ramp import FactorScheduler

# Schedulers whose step multiplies the value they find by a factor of their
# own: two of them on one group give the product of their curves.
MULTIPLICATIVE = (FactorScheduler, ConstantParamScheduler,
                  StepParamScheduler, MultiStepParamScheduler,
                  ExponentialParamScheduler, LinearParamScheduler)

# optimizer -> the GroupSelects built on it (weakly), to find conflicts
_CLAIMS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def real_groups(optimizer) -> list:
    """The optimizer's groups without ``OptimWrapper``'s base group."""
    return getattr(optimizer, 'optimizer', optimizer).param_groups


class SelectedGroups(torch.optim.Optimizer):
    """A view of some groups of an optimizer, for a scheduler to act on.

    ``param_groups`` holds the selected group dicts themselves, so the
    scheduler moves exactly those; it is read from the optimizer on every
    access, since ``load_state_dict`` (a resume) puts new group dicts in
    place of the old ones. ``defaults`` is the optimizer's, and
    ``step``/``_global_step`` (which mmengine's schedulers wrap and count)
    are the whole optimizer's, as for a scheduler built on it.

    Args:
        optimizer (Optimizer | OptimWrapper): The whole optimizer.
        indices (list[int]): The selected groups.
    """

    def __init__(self, optimizer, indices: list):
        # No Optimizer.__init__: this holds no parameters of its own.
        self.__dict__['selected_from'] = optimizer
        self.group_indices = tuple(indices)
        self.defaults = optimizer.defaults
        self.state = {}

    @property
    def param_groups(self) -> list:
        groups = real_groups(self.selected_from)
        return [groups[i] for i in self.group_indices]

    @property
    def step(self):
        return self.selected_from.step

    @step.setter
    def step(self, method) -> None:
        self.selected_from.step = method

    @property
    def _global_step(self) -> int:
        return self.selected_from._global_step

    @_global_step.setter
    def _global_step(self, value: int) -> None:
        self.selected_from._global_step = value


@PARAM_SCHEDULERS.register_module()
class GroupSelect(_ParamScheduler):
    """Run a scheduler on the optimizer groups ``groups`` selects only; the
    other groups are left untouched.

    The inner scheduler (``scheduler``, any registered one) is built on a
    view of the selected groups with the remaining arguments, exactly as a
    config entry of its own, and the Runner's ``end`` default and
    ``convert_to_iter_based`` apply to it. Several ``GroupSelect`` entries
    and plain ones in one list chain per group as mmengine chains, and
    mmlr's ramps share the value beneath their factors across selections.

    ``groups`` keys (several: the groups matching all):

    - ``role='head'`` (groups at the top layer id) or ``'backbone'``
      (all below), ``layer_ids=[first, last]`` (both included): need the
      layer ids of ``LayerDecayOptimWrapperConstructor``.
    - ``names='regex'``: groups all of whose parameter names match
      (``re.search``; names as in ``model.named_parameters()``); a group
      only some of whose names match is refused.
    - ``indices=[...]``: optimizer group indices.

    Refused when built: a selection matching no group, and a group whose
    ``param_name`` two ``GroupSelect`` entries move in overlapping windows
    (same unit) when either is not multiplicative (cosine, poly, one-cycle,
    plateau ...: the group would follow neither curve). Two multiplicative
    ones (mmlr's ramps, ``LinearLR``, ``ConstantLR``, ``StepLR``,
    ``MultiStepLR``, ``ExponentialLR``) chain. ``OptimWrapper``'s base group
    (the logged ``base_lr``) is never moved. The state holds the selected
    indices and a digest of their names; resuming when the selection now
    matches other groups is refused.

    Args:
        optimizer (Optimizer | OptimWrapper): The whole optimizer.
        groups (dict): The selection, see above.
        scheduler (str | type): The inner scheduler's type, as a config
            names it under mmengine's scope (``'MultiStepLR'``,
            ``'mmlr.LinearLR'``).
        **kwargs: The inner scheduler's arguments.

    Example:
        >>> param_scheduler = [
        ...     dict(type='GroupSelect', groups=dict(role='backbone'),
        ...          scheduler='MultiStepLR', milestones=[8, 11]),
        ...     dict(type='GroupSelect', groups=dict(role='head'),
        ...          scheduler='PolyLR', power=1.0, eta_min=0)]
    """

    def __init__(self, optimizer, groups: dict, scheduler, **kwargs):
        self._build(optimizer, groups, scheduler, kwargs, None)

    @classmethod
    def build_iter_from_epoch(cls, optimizer, groups: dict, scheduler,
                              epoch_length: int | None = None, **kwargs):
        """``convert_to_iter_based``: the inner scheduler's own
        ``build_iter_from_epoch`` with ``kwargs``."""
        self = cls.__new__(cls)
        self._build(optimizer, groups, scheduler, kwargs, epoch_length)
        return self

    def _build(self, optimizer, groups, scheduler, kwargs: dict,
               epoch_length: int | None) -> None:
        names = group_param_names(real_groups(optimizer))
        try:
            self.groups = check_selection(groups)
            inner_cls = self._scheduler_class(scheduler)
            self.indices = select_groups(self.groups, real_groups(optimizer),
                                         names)
        except (TypeError, ValueError) as error:
            # which entry of param_scheduler the key belongs to
            raise type(error)(f'param_scheduler GroupSelect: {error}') \
                from None
        self.names = names_fingerprint(names, self.indices)
        view = SelectedGroups(optimizer, self.indices)
        if epoch_length is None:
            self.scheduler = inner_cls(optimizer=view, **kwargs)
        else:
            self.scheduler = inner_cls.build_iter_from_epoch(
                optimizer=view, epoch_length=epoch_length, **kwargs)
        self._check_claims(optimizer)

    @staticmethod
    def _scheduler_class(scheduler) -> type:
        if isinstance(scheduler, type) and issubclass(scheduler,
                                                      _ParamScheduler):
            return scheduler
        # mmengine's root registry resolves 'mmlr.X' and bare names as a
        # config under mmengine's scope does (bare LinearLR is mmengine's).
        found = MMENGINE_PARAM_SCHEDULERS.get(scheduler) if isinstance(
            scheduler, str) else None
        if found is None or found is GroupSelect:
            raise ValueError(
                f'scheduler must name a parameter scheduler other than '
                f'GroupSelect (e.g. \'MultiStepLR\', \'mmlr.LinearLR\'), got '
                f'{scheduler!r}')
        return found

    def describe(self) -> str:
        return (f'GroupSelect(groups={self.groups!r}, scheduler='
                f'{type(self.scheduler).__name__})')

    def _check_claims(self, optimizer) -> None:
        claims = _CLAIMS.setdefault(optimizer, [])
        claims[:] = [ref for ref in claims if ref() is not None]
        mine = self.scheduler
        for ref in claims:
            other = ref().scheduler
            shared = sorted(set(self.indices) & set(ref().indices))
            if not shared or other.param_name != mine.param_name \
                    or other.by_epoch != mine.by_epoch:
                continue
            begin, end = max(other.begin, mine.begin), min(other.end,
                                                           mine.end)
            if begin < end and not (isinstance(mine, MULTIPLICATIVE)
                                    and isinstance(other, MULTIPLICATIVE)):
                unit = 'epochs' if mine.by_epoch else 'iterations'
                raise ValueError(
                    f'param_scheduler: {ref().describe()} and '
                    f'{self.describe()} both set {mine.param_name} of '
                    f'optimizer groups {shared} in {unit} [{begin}, {end}); '
                    'only multiplicative schedulers chain on one group, so '
                    'it would follow neither: give them disjoint groups or '
                    'disjoint begin/end')
        claims.append(weakref.ref(self))

    def step(self, *args, **kwargs) -> None:
        self.scheduler.step(*args, **kwargs)

    def __getattr__(self, name: str):
        # begin, end, by_epoch, param_name, need_val_args, base_values ...
        # are the inner scheduler's.
        inner = self.__dict__.get('scheduler')
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def selection(self) -> dict:
        return plain(dict(groups=self.groups, indices=self.indices,
                          names=self.names,
                          scheduler=type(self.scheduler).__name__))

    def state_dict(self) -> dict:
        return dict(type='GroupSelect', selection=self.selection(),
                    scheduler=self.scheduler.state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get('type') != 'GroupSelect':
            found = state_dict.get('type') or 'a scheduler without GroupSelect'
            raise ValueError(
                f'cannot resume: the checkpoint holds the state of {found} '
                f'where the config has {self.describe()}: param_scheduler in'
                ' the config and in the checkpoint differ')
        saved, now = state_dict['selection'], self.selection()
        same_names = None in (saved['names'], now['names']) or \
            saved['names'] == now['names']
        if saved['indices'] != now['indices'] or not same_names:
            raise ValueError(
                f'cannot resume: {self.describe()} now selects optimizer '
                f'groups {now["indices"]} (names {now["names"]}), but the '
                f'checkpoint\'s groups={saved["groups"]!r} selected '
                f'{saved["indices"]} (names {saved["names"]}); resume with '
                'the selection and optimizer groups the run was started '
                'with, or start from its weights with load_from')
        self.scheduler.load_state_dict(state_dict['scheduler'])
