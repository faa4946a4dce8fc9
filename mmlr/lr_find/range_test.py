"""The lr range test itself: train a few iterations while every group's lr
grows exponentially, and record the loss.

The run leaves the model and the optimizer as it found them: their state is
copied before the first iteration and put back afterwards, whether the test
ends, stops early or fails.
"""
import copy
import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from ..user_errors import UserError


@dataclass
class RangeTestResult:
    """What one range test recorded, one entry per iteration run.

    Attributes:
        lrs (list[float]): The reference group's lr (the optimizer's own
            ``lr``, i.e. the config's ``optimizer.lr``) at each iteration.
        group_lrs (list[list[float]]): Every optimizer group's lr at each
            iteration.
        losses (list[float]): The training loss of each iteration (the
            mean over its micro-batches under gradient accumulation).
        smoothed (list[float]): ``losses`` after the debiased exponential
            moving average (see :class:`SmoothedLoss`).
        planned_iters (int): Iterations asked for.
        stop_reason (str, optional): Why the test stopped before
            ``planned_iters``, or None.
    """
    lrs: list[float] = field(default_factory=list)
    group_lrs: list[list[float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    planned_iters: int = 0
    stop_reason: str | None = None


def exponential_lrs(start_lr: float, end_lr: float,
                    num_iters: int) -> list[float]:
    """The reference lr of each iteration: ``start_lr`` at the first,
    ``end_lr`` at the last, equal ratios in between, i.e. iteration ``i``
    of ``n`` runs at ``start_lr * (end_lr / start_lr) ** (i / (n - 1))``.

    Raises:
        ValueError: ``start_lr`` not above 0, ``end_lr`` not above
            ``start_lr``, fewer than 2 iterations.
    """
    if not start_lr > 0:
        raise ValueError(f'start_lr must be above 0, got {start_lr}')
    if not end_lr > start_lr:
        raise ValueError(f'end_lr must be above start_lr ({start_lr}), got '
                         f'{end_lr}')
    if num_iters < 2:
        raise ValueError(f'num_iters must be at least 2, got {num_iters}')
    ratio = end_lr / start_lr
    return [start_lr * ratio**(i / (num_iters - 1)) for i in range(num_iters)]


class SmoothedLoss:
    """Debiased exponential moving average of the loss, and the divergence
    test on it.

    ``average = beta * average + (1 - beta) * loss`` from ``average = 0``,
    divided by ``1 - beta ** (i + 1)`` after the ``i``-th loss so the first
    values are not pulled towards 0. The test has diverged when a smoothed
    value exceeds ``diverge_factor`` times the lowest one so far (a loss
    that is not finite diverges at once).

    Args:
        beta (float): Weight of the past, in [0, 1); 0 keeps the raw loss.
        diverge_factor (float, optional): Above 1; None never stops.
    """

    def __init__(self, beta: float, diverge_factor: float | None):
        if not 0 <= beta < 1:
            raise ValueError(f'smoothing must be in [0, 1), got {beta}')
        if diverge_factor is not None and not diverge_factor > 1:
            raise ValueError('diverge_factor must be above 1 (or None to '
                             f'never stop early), got {diverge_factor}')
        self.beta = beta
        self.diverge_factor = diverge_factor
        self._average = 0.0
        self._count = 0
        self.best = math.inf

    def update(self, loss: float) -> tuple[float, str | None]:
        """Add one loss; return the smoothed value and, if the run has
        diverged, why."""
        self._average = self.beta * self._average + (1 - self.beta) * loss
        self._count += 1
        smoothed = self._average / (1 - self.beta**self._count)
        if not math.isfinite(loss):
            return smoothed, f'the loss is {loss}'
        self.best = min(self.best, smoothed)
        if self.diverge_factor is not None and \
                smoothed > self.diverge_factor * self.best:
            return smoothed, (f'the smoothed loss {smoothed:.4g} exceeds '
                              f'{self.diverge_factor:g} x its minimum '
                              f'{self.best:.4g}')
        return smoothed, None


def reference_lr(optim_wrapper: OptimWrapper) -> float:
    """The lr the groups' ratios are taken against: the optimizer's own
    ``lr`` (its ``defaults``), which is the config's ``optimizer.lr``; the
    layer-decay constructor gives it to the head's group (group 0)."""
    optimizer = optim_wrapper.optimizer
    lr = optimizer.defaults.get('lr', optimizer.param_groups[0]['lr'])
    if not lr > 0:
        raise UserError(f'optim_wrapper.optimizer.lr must be above 0 for an '
                        f'lr range test (the groups\' lrs are taken relative '
                        f'to it), got {lr}')
    return float(lr)


def run_range_test(model: nn.Module,
                   optim_wrapper: OptimWrapper,
                   dataloader: Iterable,
                   lrs: list[float],
                   smoothing: float = 0.98,
                   diverge_factor: float | None = 4.0) -> RangeTestResult:
    """Train ``len(lrs)`` iterations with ``model.train_step``, the
    reference lr of iteration ``i`` being ``lrs[i]``; every other group
    keeps its ratio to the reference (group lr / optimizer lr) as the
    optimizer was built. No parameter scheduler runs. Stops early when the
    smoothed loss diverges (see :class:`SmoothedLoss`). The model's and the
    optimizer's state are restored afterwards.

    Under gradient accumulation (``accumulative_counts=k``) one iteration
    is one optimizer step, i.e. ``k`` batches.

    Args:
        model (nn.Module): A model with mmengine's ``train_step`` (built by
            a Runner, possibly wrapped).
        optim_wrapper (OptimWrapper): Its optim wrapper.
        dataloader (Iterable): Batches, re-iterated when exhausted.
        lrs (list[float]): From :func:`exponential_lrs`.
        smoothing (float): ``beta`` of :class:`SmoothedLoss`.
        diverge_factor (float, optional): See :class:`SmoothedLoss`.

    Example:
        >>> result = run_range_test(model, wrapper, loader,
        ...                         exponential_lrs(1e-7, 10, 100))
        >>> result.lrs[-1], result.smoothed[-1]
    """
    smoother = SmoothedLoss(smoothing, diverge_factor)
    groups = optim_wrapper.optimizer.param_groups
    ref = reference_lr(optim_wrapper)
    ratios = [group['lr'] / ref for group in groups]
    steps_per_iter = getattr(optim_wrapper, '_accumulative_counts', 1)
    result = RangeTestResult(planned_iters=len(lrs))

    saved_model = copy.deepcopy(model.state_dict())
    saved_optim = copy.deepcopy(optim_wrapper.state_dict())
    saved_lrs = [group['lr'] for group in groups]
    was_training = model.training
    try:
        optim_wrapper.initialize_count_status(model, 0,
                                              len(lrs) * steps_per_iter)
        model.train()
        batches = _endless(dataloader)
        for lr in lrs:
            for group, ratio in zip(groups, ratios):
                group['lr'] = lr * ratio
            loss = sum(_train_step(model, next(batches), optim_wrapper)
                       for _ in range(steps_per_iter)) / steps_per_iter
            smoothed, stop = smoother.update(loss)
            result.lrs.append(lr)
            result.group_lrs.append([group['lr'] for group in groups])
            result.losses.append(loss)
            result.smoothed.append(smoothed)
            if stop:
                result.stop_reason = stop
                break
    finally:
        model.load_state_dict(saved_model)
        optim_wrapper.load_state_dict(saved_optim)
        for group, lr in zip(groups, saved_lrs):
            group['lr'] = lr
        optim_wrapper.optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
    return result


def _train_step(model: nn.Module, batch, optim_wrapper: OptimWrapper
                ) -> float:
    log_vars = model.train_step(batch, optim_wrapper=optim_wrapper)
    if 'loss' not in log_vars:
        raise UserError('the model\'s train_step returned no "loss" to '
                        f'follow, only {sorted(log_vars)}')
    loss = log_vars['loss']
    return float(loss.item() if isinstance(loss, torch.Tensor) else loss)


def _endless(dataloader: Iterable) -> Iterator:
    """The batches of ``dataloader``, epoch after epoch, each epoch's
    sampler seeded as mmengine's ``DistSamplerSeedHook`` seeds it."""
    epoch = 0
    while True:
        for sampler in (getattr(dataloader, 'sampler', None),
                        getattr(getattr(dataloader, 'batch_sampler', None),
                                'sampler', None)):
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(epoch)
        empty = True
        for batch in dataloader:
            empty = False
            yield batch
        if empty:
            raise UserError('train_dataloader yields no batches')
        epoch += 1


__all__ = ['RangeTestResult', 'exponential_lrs', 'SmoothedLoss',
           'reference_lr', 'run_range_test']
