"""``LayerDecayOptimWrapperConstructor``: config in, ``OptimWrapper`` out."""
import inspect
import logging

import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.logging import MMLogger, print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
from torch.nn.parallel import DistributedDataParallel

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS
from .layer_depths import backbones
from .layer_ids import layer_depths
from .param_groups import (format_params, format_table, group_rows,
                           merge_groups, named_params, plan_params)
from .param_names import path_match
from .param_rules import NoDecayHints, ParamRules
from .sharded_params import original_shapes, refuse_flattened
from .paramwise_cfg import nearest, parse_paramwise_cfg
from .paramwise_checks import check_custom_field
from .unmatched import (check_freeze, decays_nothing, unmatched_custom_keys,
                        unmatched_depth_rules)

# custom_keys fields that are not optimizer arguments.
MULT_FIELDS = ('lr_mult', 'decay_mult')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor:
    """Build an optim wrapper with layer-wise lr decay and per-parameter
    rules, in few merged parameter groups.

    A superset of mmengine's ``DefaultOptimWrapperConstructor``: all its
    ``paramwise_cfg`` keys work and, with no layer decay and no model hints,
    give every parameter the same lr and weight decay. On top of it:

    - **Layer decay**: the lr of a parameter at layer id ``d`` of ``n`` is
      ``lr * rate ** (n - 1 - d)`` (the top layer, head and neck, keeps
      ``lr``). Ids come from the config's ``depth_rules``, mmseg's and
      mmdet's tables (with ``num_layers``, for the backbones they know),
      the model's (or its backbone's) ``get_layer_depth`` (mmpretrain),
      ``lr_decay_keywords`` (InternVL), timm's ``group_matcher()``, or the
      trunk found in the module tree, in that order; see
      :mod:`mmlr.optim.layer_ids`.
    - **Merged groups**: parameters with identical settings share a group;
      each group has ``lr`` and ``weight_decay`` set (so mmengine's
      schedulers, ``auto_scale_lr`` and logging work) plus ``lr_scale`` and
      ``layer_id`` as metadata. Groups are ordered top layer first, so
      group 0, whose lr mmengine logs as the run's ``lr``, is at the
      optimizer's ``lr`` (the table says so when no group is).
    - Frozen parameters are never put in a group, tied weights once, model
      wrappers are unwrapped with ``is_model_wrapper``; one table at INFO
      shows the groups.

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config: ``optimizer``
            (with ``lr``) and the wrapper's own keys (``type`` defaults to
            ``'OptimWrapper'``, ``clip_grad``, ``accumulative_counts`` ...).
        paramwise_cfg (dict, optional): Any of

            - mmengine's: ``custom_keys`` (``{substring: dict(lr_mult=,
              decay_mult=, <optimizer key>=)}``; the longest matching key
              wins and sets only the fields it names), ``bias_lr_mult``,
              ``bias_decay_mult``, ``norm_decay_mult``,
              ``dwconv_decay_mult``, ``flat_decay_mult``,
              ``dcn_offset_lr_mult``, ``bypass_duplicate`` (accepted; shared
              parameters are always placed once).
            - ``layer_decay_rate`` (mmpretrain, mmpose) or ``decay_rate``
              (mmseg, mmdet): in (0, 1]. Without it there is no decay.
            - ``num_layers`` (mmseg, mmdet, mmpose): number of blocks; ids
              then range over ``num_layers + 2``, and 1-D parameters and
              biases get no weight decay, as those repositories do.
            - ``decay_type``: ``'layer_wise'`` (default; mmseg's
              ``'layer_wise_vit'`` is the same) or ``'stage_wise'`` (one id
              per stage: mmseg/mmdet's ConvNeXt table, else the trunk's
              stages; refused for a backbone without stages).
            - ``layer_decay_min_scale`` (timm): lower bound of the scale.
            - ``depth_source``: ``'auto'`` (default), ``'rules'``,
              ``'mmseg'`` (mmseg/mmdet's tables for ConvNeXt, BEiT and MAE
              backbones, with ``num_layers``), ``'get_layer_depth'``,
              ``'lr_decay_keywords'``, ``'group_matcher'`` or ``'trunk'``.
            - ``depth_rules``: ``[(regex, depth), ...]`` searched in full
              parameter names; names no rule matches go to the top and are
              reported.
            - ``backbone``: path (or list of paths, one schedule each) of the
              module(s) to decay. Defaults to the model's ``backbone`` child
              if it has one, else the whole model.
            - ``model_hints``: honour the model's ``no_weight_decay()``,
              ``no_weight_decay_keywords()``, ``get_layer_depth``,
              ``lr_decay_keywords`` and ``group_matcher``. Defaults to True.
            - ``dcn_lr_mult`` (InternVL): lr multiplier of DCNv3's
              ``offset``, ``attention_weights``,
              ``center_feature_scale_proj`` and ``alpha_beta``.
            - ``freeze``: module paths (a list, or one as a string) whose
              parameters are frozen (``'levels.1'`` matches whole name
              components, so not ``levels.10``); ``keep_trainable``: paths
              exempt from it; ``freeze_backbone`` (InternVL): level indices.
              A path that matches no parameter is an error.

    Example:
        >>> # MAE ViT-B fine-tuning (mmpretrain's recipe)
        >>> optim_wrapper = dict(
        ...     constructor='LayerDecayOptimWrapperConstructor',
        ...     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05,
        ...                    betas=(0.9, 0.999)),
        ...     paramwise_cfg=dict(
        ...         layer_decay_rate=0.65,
        ...         custom_keys={
        ...             '.ln': dict(decay_mult=0.0),
        ...             '.bias': dict(decay_mult=0.0),
        ...             '.cls_token': dict(decay_mult=0.0),
        ...             '.pos_embed': dict(decay_mult=0.0)
        ...         }))
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None):
        if not isinstance(optim_wrapper_cfg, dict):
            raise TypeError('optim_wrapper_cfg must be a dict, got '
                            f'{type(optim_wrapper_cfg).__name__}')
        if 'optimizer' not in optim_wrapper_cfg:
            raise ValueError('optim_wrapper needs an optimizer, e.g. '
                             "optimizer=dict(type='AdamW', lr=1e-3)")
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.optimizer_cfg = dict(self.optim_wrapper_cfg.pop('optimizer'))
        self.base_lr = self.optimizer_cfg.get('lr')
        if not isinstance(self.base_lr, (int, float)):
            raise ValueError(
                'optim_wrapper.optimizer.lr is required by '
                'LayerDecayOptimWrapperConstructor (every group\'s lr is '
                f'set from it at build time), got {self.base_lr!r}')
        self.base_wd = self.optimizer_cfg.get('weight_decay')
        self.cfg = parse_paramwise_cfg(paramwise_cfg, self.base_wd)
        self.optimizer_cls = self._optimizer_cls()
        self._check_custom_fields()

    def _optimizer_cls(self) -> type:
        optimizer_cls = self.optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cls)
            if optimizer_cls is None:
                raise KeyError(f'optimizer type {self.optimizer_cfg["type"]!r}'
                               ' is not in the OPTIMIZERS registry')
        return optimizer_cls

    def _check_custom_fields(self) -> None:
        # Extra custom_keys fields become optimizer group keys; a typo there
        # (mmpose's ViTPose configs have 'decay_multi') would otherwise be
        # accepted by torch and silently do nothing.
        params = inspect.signature(self.optimizer_cls).parameters
        args = list(params)[1:]
        allowed = MULT_FIELDS + tuple(a for a in args if a != 'kwargs')
        for key, fields in self.cfg.custom_keys.items():
            for name, value in fields.items():
                if name not in allowed:
                    raise ValueError(
                        f'paramwise_cfg.custom_keys[{key!r}] has unknown '
                        f'field {name!r}{nearest(name, allowed)}; allowed: '
                        f'{", ".join(allowed)}')
                if name not in MULT_FIELDS:
                    check_custom_field(f'custom_keys[{key!r}].{name}', value,
                                       params[name].default)

    def plan(self, model: nn.Module) -> tuple:
        """Work out the groups without building an optimizer.

        Freezing (``freeze``) is applied to ``model`` here.

        Args:
            model (nn.Module): The model, possibly in a model wrapper.

        Returns:
            tuple[list[GroupPlan], list[ParamPlan], PlanReport]
        """
        wrapper = model if is_model_wrapper(model) else None
        refuse_flattened(model)
        shapes = original_shapes(model)
        if wrapper is not None:
            model = model.module
        frozen_now = self.freeze(model)
        if frozen_now and isinstance(wrapper, DistributedDataParallel) \
                and not wrapper.find_unused_parameters:
            # DDP fixed the parameters it reduces when it wrapped the model;
            # it would wait for gradients these never get and fail at the
            # next iteration ("Expected to have finished reduction ...").
            raise ValueError(
                f'paramwise_cfg froze {len(frozen_now)} parameters (e.g. '
                f'{frozen_now[0]!r}) of a model already wrapped in '
                'DistributedDataParallel, which still expects gradients for '
                'them. Freeze before the model is wrapped (tools/train.py '
                'does; elsewhere call this constructor\'s freeze(model) '
                'first) or set find_unused_parameters=True in the config')
        entries = [e for e in named_params(model) if not e[4]]
        names = [name for name, *_ in entries]
        depths = layer_depths(model, names, self.cfg)
        self._warn_unmatched(model, names, depths)
        hint_modules = [('', model)] + [
            t for t in backbones(model, self.cfg.backbone) if t[0]
        ]
        hints = NoDecayHints.of(hint_modules if self.cfg.model_hints else [])
        rules = ParamRules(self.cfg, hints, self.base_wd is not None, shapes)
        rate = self.cfg.layer_decay_rate or 1.0
        plans, report = plan_params(model, rules, depths, self.base_lr,
                                    self.base_wd, rate, self.cfg.min_scale)
        return merge_groups(plans), plans, report

    def _warn_unmatched(self, model: nn.Module, names: list,
                        depths) -> None:
        """One WARNING line per config entry the model gives nothing to."""
        model_name = type(model).__name__
        warnings = unmatched_custom_keys(names, self.cfg.custom_keys,
                                         model_name)
        if self.cfg.layer_decay:
            trunks = [path or model_name
                      for path, _ in backbones(model, self.cfg.backbone)]
            nothing = decays_nothing(depths, self.cfg.layer_decay_rate,
                                     trunks)
            if nothing is not None:
                warnings.append(nothing)
            elif depths.source == 'rules':
                warnings += unmatched_depth_rules(names, self.cfg.depth_rules)
        if get_rank() == 0:
            for message in warnings:
                print_log(message, logger='current', level=logging.WARNING)

    def freeze(self, model: nn.Module) -> list[str]:
        """Set ``requires_grad=False`` on the parameters ``freeze`` names.

        The optimizer build calls it; under DDP call it also before the model
        is wrapped, because DDP decides then which parameters it reduces.

        Args:
            model (nn.Module): The model (a model wrapper is unwrapped).

        Returns:
            list[str]: The parameters this call froze (those frozen already
            are not listed).
        """
        if is_model_wrapper(model):
            model = model.module
        frozen = []
        if not self.cfg.freeze:
            return frozen
        check_freeze([name for name, *_ in named_params(model)],
                     self.cfg.freeze, self.cfg.keep_trainable,
                     type(model).__name__)
        for name, param, *_ in named_params(model):
            if param.requires_grad and any(
                    path_match(name, p) for p in self.cfg.freeze) and not any(
                        path_match(name, p) for p in self.cfg.keep_trainable):
                param.requires_grad_(False)
                frozen.append(name)
        return frozen

    def _logged_lr_note(self, groups: list) -> str:
        """A line under the table when the training log's ``lr`` (group
        0's, as mmengine logs it) is not the optimizer's ``lr`` on its
        schedule: every group then carries a layer scale or an lr_mult."""
        lr = groups[0].hyper['lr']
        if lr == self.base_lr:
            return ''
        # base_lr == 0 gives every group lr 0: no note, no division.
        ratio = lr / self.base_lr
        base = (f'; base_lr is optimizer.lr={self.base_lr:g} on its '
                'schedule' if len(groups) > 1 else '')
        return (f'\nno group has optimizer.lr={self.base_lr:g}: the training '
                f'log\'s lr is group 0\'s ({ratio:.4g} x optimizer.lr on its '
                f'schedule){base}')

    def __call__(self, model: nn.Module) -> OptimWrapper:
        groups, plans, report = self.plan(model)
        if not groups:
            raise ValueError('the model has no trainable parameters left '
                             f'({report.frozen} frozen)')
        if get_rank() == 0:
            print_log(
                'LayerDecayOptimWrapperConstructor:\n' +
                format_table(group_rows(groups), report) +
                self._logged_lr_note(groups),
                logger='current',
                level=logging.INFO)
            if MMLogger.get_current_instance().isEnabledFor(logging.DEBUG):
                # a line per parameter: only formatted when it is shown
                print_log(format_params(plans), logger='current',
                          level=logging.DEBUG)
        optimizer_cfg = dict(self.optimizer_cfg)
        optimizer_cfg['type'] = self.optimizer_cls
        # mmengine's convention: params go under the first argument's name
        # (ZeroRedundancyOptimizer, colossalai's HybridAdam(model_params)).
        first_arg = next(iter(inspect.signature(self.optimizer_cls).parameters))
        optimizer_cfg[first_arg] = [g.optimizer_group() for g in groups]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(
            wrapper_cfg, default_args=dict(optimizer=optimizer))
