"""On resume, the optimizer's hyper-parameters follow the config and its
state lands on the tensors it belongs to."""
import copy

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import BaseOptimWrapper, OptimWrapperDict

from ..registry import HOOKS
from ..schedulers.base import plain
from .config_changes import config_changes, log_changes, same_value
from .optimizer_layout import (named_groups, optimizer_defaults,
                               remap_by_name, shape_mismatches)
from .schedule_replay import replay_schedule

#: checkpoint key of the parameter names each optimizer group held
NAMES_KEY = 'optimizer_param_names'
#: where the hyper-parameters of a resumed run come from
SETTINGS_SOURCES = ('config', 'checkpoint')


def optim_wrappers(optim_wrapper) -> dict:
    """``{optimizer name: OptimWrapper}``, name ``''`` for a single one."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        return dict(optim_wrapper.items())
    return {'': optim_wrapper}


def config_values(group: dict) -> dict:
    """A group's hyper-parameters as its optimizer was built, before any
    scheduler stepped: mmengine's schedulers keep that value of each key they
    schedule as ``initial_<key>``; the other keys are unchanged."""
    values = {
        k: copy.deepcopy(v)
        for k, v in group.items()
        if k != 'params' and not k.startswith('initial_')
    }
    for key in values:
        if f'initial_{key}' in group:
            values[key] = copy.deepcopy(group[f'initial_{key}'])
    if 'initial_momentum' in group and 'betas' in group:
        # mmengine's momentum schedulers move Adam's betas[0] as 'momentum'
        values['betas'] = (group['initial_momentum'], *group['betas'][1:])
    return values


@HOOKS.register_module()
class OptimizerResumeHook(Hook):
    """Resume the optimizer with the config's hyper-parameters and the
    checkpoint's state, each parameter's state on its own tensor.

    mmengine's resume loads every group's ``lr``, ``initial_lr``,
    ``weight_decay``, betas... from the checkpoint, and its schedulers their
    base values, so a resume with a changed ``lr`` or layer decay trains on
    with the old values. With this hook, after a resume every group holds what
    an uninterrupted run of the *current* config would hold at that step: the
    config's values as the optimizer constructor built them, moved by the
    config's schedulers (rebuilt and stepped from the start on a probe
    optimizer of the constructor's values, mmengine's and mmlr's alike,
    which then hand their state to the run's schedulers). The optimizer's
    state (moments, step counts) is the checkpoint's. Every changed config
    setting is logged once, with the number of groups whose values changed.

    Before loading, the checkpoint's groups are compared with the config's:
    the hook stores the parameter names of each group in every checkpoint,
    so when the groups hold other tensors (``freeze`` changed, groups merged
    or reordered) each parameter's state is moved to where its name now is,
    and parameters new to the optimizer start without state (both logged).
    A checkpoint without names (written without this hook) is refused when
    its group count, group sizes or state shapes differ from the config's.
    Under DeepSpeed the values follow the config the same way; its engine
    places the state by group position (:mod:`mmlr.deepspeed_resume`).

    ``tools/train.py`` adds the hook; with another entry point add it to
    ``custom_hooks``. A schedule with a plateau scheduler (``ReduceLR``,
    ``ReduceOnPlateauLR``) depends on past metrics and cannot be replayed:
    resuming it with changed values is refused (``settings_from='checkpoint'``
    resumes it as mmengine does).

    Args:
        settings_from (str): ``'config'`` (default) as above; ``'checkpoint'``
            keeps the checkpoint's hyper-parameters and scheduler base values,
            as mmengine does (the state is still placed by name).

    Example:
        >>> custom_hooks = [dict(type='mmlr.OptimizerResumeHook')]
        >>> # keep the checkpoint's lrs, as mmengine does:
        >>> custom_hooks = [
        ...     dict(type='mmlr.OptimizerResumeHook',
        ...          settings_from='checkpoint')]
    """

    # Before every other hook's before_train, so they see the final values.
    priority = 'VERY_HIGH'

    def __init__(self, settings_from: str = 'config'):
        if settings_from not in SETTINGS_SOURCES:
            raise ValueError(
                f'OptimizerResumeHook: settings_from must be one of '
                f'{SETTINGS_SOURCES}, got {settings_from!r}')
        self.settings_from = settings_from
        self._config_values: dict | None = None
        self._defaults: dict = {}
        self._saved_config: str | None = None
        self._resumed = False

    def before_run(self, runner) -> None:
        # Runner: the optimizer and schedulers are built; the checkpoint is
        # not loaded yet: remember what the config built. (FlexibleRunner
        # loads before before_run: see after_load_checkpoint.)
        if self._config_values is None:
            self._remember_config(runner)

    def _remember_config(self, runner) -> None:
        if not isinstance(getattr(runner, 'optim_wrapper', None),
                          BaseOptimWrapper):
            return  # validation or test only
        wrappers = optim_wrappers(runner.optim_wrapper)
        # wrapper.param_groups: with several groups mmengine's OptimWrapper
        # adds a parameter-less group of the optimizer's defaults (logged as
        # base_lr), which the schedulers move too. DeepSpeed loads the
        # checkpoint's groups first: mmlr's strategy kept the built ones.
        built = getattr(getattr(runner, 'strategy', None),
                        'param_groups_before_resume', None)
        self._config_values = {
            name: [config_values(g) for g in built or w.param_groups]
            for name, w in wrappers.items()
        }
        self._defaults = {
            name: copy.deepcopy(optimizer_defaults(w.optimizer))
            for name, w in wrappers.items()
        }

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not isinstance(runner.optim_wrapper, BaseOptimWrapper):
            return  # not built: the checkpoint holds no optimizer
        checkpoint[NAMES_KEY] = plain({
            name: named_groups(w.optimizer, runner.model)
            for name, w in optim_wrappers(runner.optim_wrapper).items()
        })

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # DeepSpeed's: 'optim_wrapper' only, its engine loaded the optimizer
        if not getattr(runner, '_resume', False) or not (
                {'optimizer', 'optim_wrapper'} & set(checkpoint)):
            return  # load_from: new training from the weights
        if self._config_values is None:
            # FlexibleRunner: before before_run, and before the optimizer
            # state is loaded, so the groups still hold the config's values.
            self._remember_config(runner)
        self._resumed = True
        # mmengine writes the config's text as meta['cfg']
        self._saved_config = checkpoint.get('meta', {}).get('cfg')
        if 'optimizer' not in checkpoint:
            return
        wrappers = optim_wrappers(runner.optim_wrapper)
        saved = checkpoint['optimizer']
        if '' not in wrappers:
            missing = sorted(set(wrappers) - set(saved))
            if missing:
                raise ValueError(
                    f'cannot resume: the checkpoint has no state for the '
                    f'optimizers {missing} (it has {sorted(saved)})')
        saved_names = checkpoint.get(NAMES_KEY) or {}
        for name, wrapper in wrappers.items():
            state = saved if name == '' else saved[name]
            checked = self._fit_layout(runner, name, wrapper, state,
                                       saved_names.get(name))
            if name == '':
                checkpoint['optimizer'] = checked
            else:
                saved[name] = checked

    def _fit_layout(self, runner, name: str, wrapper, saved: dict,
                    saved_names: list | None) -> dict:
        """``saved`` in the layout of ``wrapper``'s groups, or an error."""
        where = f' of optimizer {name!r}' if name else ''
        groups = wrapper.optimizer.param_groups
        params = [list(g['params']) for g in groups]
        if saved_names is None:
            found = shape_mismatches(saved['state'], saved['param_groups'],
                                     params)
            if found:
                raise ValueError(
                    f'cannot resume: the optimizer groups{where} in the '
                    'checkpoint hold other tensors than the config builds ('
                    + '; '.join(found[:5]) + '). The checkpoint has no '
                    'parameter names to move the state by (written without '
                    'OptimizerResumeHook); resume with the config it was '
                    'written with, or use load_from for its weights only')
            return saved
        names = named_groups(wrapper.optimizer, runner.model)
        if names == saved_names:
            return saved
        remapped, report = remap_by_name(saved, saved_names, names, params)
        if report['mixed'] and self.settings_from == 'checkpoint':
            raise ValueError(
                f'cannot resume with settings_from=\'checkpoint\': groups '
                f'{report["mixed"]}{where} of the config hold parameters '
                'that the checkpoint kept in different groups (or new '
                'ones), so they have no checkpoint values to keep; use '
                'settings_from=\'config\'')
        for i, hyper in enumerate(remapped['param_groups']):
            if hyper is None:  # follows the config in before_train
                hyper = {k: v for k, v in groups[i].items() if k != 'params'}
            count = sum(len(p) for p in params[:i])
            hyper['params'] = list(range(count, count + len(params[i])))
            remapped['param_groups'][i] = hyper
        moved = sum(len(n) for n in names) - len(report['new'])
        print_log(
            f'Resume: the optimizer groups{where} hold other tensors than '
            f'the checkpoint\'s ({len(saved_names)} groups then, '
            f'{len(names)} now); moved the state of {moved} parameters by '
            f'name' + (f', {len(report["new"])} new without state (e.g. '
                       f'{report["new"][0]})' if report['new'] else '') +
            (f', {len(report["dropped"])} no longer optimized (e.g. '
             f'{report["dropped"][0]})' if report['dropped'] else ''),
            logger='current')
        return remapped

    def before_train(self, runner) -> None:
        if not self._resumed:
            return
        self._resumed = False
        if self._config_values is None:
            print_log(
                'OptimizerResumeHook: the run was resumed before training '
                'started (no before_run), so the optimizer keeps the '
                'checkpoint\'s hyper-parameters', logger='current', level=30)
            return
        changes = config_changes(self._saved_config, runner.cfg)
        schedulers = runner.param_schedulers or {}
        if not isinstance(schedulers, dict):
            schedulers = {'': schedulers}
        for name, wrapper in optim_wrappers(runner.optim_wrapper).items():
            self._follow_config(runner, name, wrapper,
                                list(schedulers.get(name, [])), changes)

    def _follow_config(self, runner, name: str, wrapper, schedulers: list,
                       changes: list[str]) -> None:
        where = f' of optimizer {name!r}' if name else ''
        groups = wrapper.param_groups
        plateaus = [
            type(s).__name__ for s in schedulers
            if getattr(s, 'need_val_args', False)
        ]
        values = [{k: v for k, v in g.items() if k != 'params'}
                  for g in groups]
        same_bases = [config_values(g)
                      for g in groups] == self._config_values[name]
        if same_bases and not changes and self._saved_config:
            return  # the checkpoint's values are the config's: no replay
        if plateaus:
            # Past metrics decided the reductions: nothing to replay.
            if same_bases:
                return
            if self.settings_from == 'checkpoint':
                log_changes(changes, [], where, kept=True)
                return
            raise ValueError(
                f'cannot resume: the optimizer{where} was configured with '
                'other values than the checkpoint\'s (' +
                ('; '.join(changes) or 'group hyper-parameters') +
                f') and its schedule has {plateaus}, whose reductions depend '
                'on past metrics and cannot be recomputed for the new '
                'values; resume with the checkpoint\'s settings, or add '
                "custom_hooks=[dict(type='mmlr.OptimizerResumeHook', "
                "settings_from='checkpoint')] to keep its values")
        replayed = replay_schedule(runner, name, wrapper, schedulers,
                                   self._config_values[name],
                                   self._defaults[name])
        if isinstance(replayed, str):
            print_log(
                f'OptimizerResumeHook: cannot rebuild the schedulers{where} '
                f'from the config ({replayed}); the optimizer keeps the '
                'checkpoint\'s hyper-parameters', logger='current', level=30)
            return
        probe, probe_schedulers = replayed
        targets = [{k: v for k, v in g.items() if k != 'params'}
                   for g in probe.param_groups]
        # Counted: the optimizer's own hyper-parameters (initial_<key> moves
        # with <key>; lr_scale, layer_id... are the constructor's notes).
        counted = set(optimizer_defaults(wrapper.optimizer)) | {'momentum'}
        # (and only the optimizer's groups, not OptimWrapper's base group)
        differ = [(i, k) for i, (old, new) in enumerate(
            zip(values[:len(wrapper.optimizer.param_groups)], targets))
                  for k in new if k in old and k in counted
                  and not same_value(old[k], new[k])]
        if self.settings_from == 'checkpoint':
            if differ:
                log_changes(changes, differ, where, kept=True)
            return
        for group, target in zip(groups, targets):
            group.update(copy.deepcopy(target))
        for live, fresh in zip(schedulers, probe_schedulers):
            live.load_state_dict(copy.deepcopy(fresh.state_dict()))
        if differ or changes:
            log_changes(changes, differ, where, kept=False, values=values,
                        targets=targets)
