"""When the simulated run validates (the iterations at which vis_lr.py feeds
plateau schedulers a metric), against mmengine's own training loops deciding
it, ``dynamic_intervals`` included."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch.utils.data import DataLoader

from mmlr.analysis import TrainLength, build_tracks, simulate, train_length

LOOP_SETTINGS = [
    dict(val_interval=4, dynamic_intervals=[(8, 1)]),
    dict(val_interval=3, val_begin=5),
    dict(val_interval=5, dynamic_intervals=[(3, 2), (9, 4)]),
    dict(val_interval=1),
    dict(val_interval=5, dynamic_intervals=[(4, 2), (4, 3)]),  # repeated
]


def mmengine_validates(loop, steps: int, by_epoch: bool) -> list[int]:
    """The condition of ``EpochBasedTrainLoop.run`` / ``IterBasedTrainLoop
    .run`` after each epoch / iteration, with the loop's own interval."""
    points = []
    for step in range(1, steps + 1):
        if by_epoch:
            loop._epoch = step
        else:
            loop._iter = step
        loop._decide_current_val_interval()
        if step >= loop.val_begin and (step % loop.val_interval == 0
                                       or step == steps):
            points.append(step)
    return points


def loop_of(by_epoch: bool, steps: int, settings: dict):
    data = DataLoader(list(range(6)), batch_size=2)
    if by_epoch:
        return EpochBasedTrainLoop(SimpleNamespace(), data,
                                   max_epochs=steps, **settings)
    return IterBasedTrainLoop(SimpleNamespace(), data, max_iters=steps,
                              **settings)


def config(by_epoch: bool, steps: int, settings: dict) -> Config:
    loop = dict(type='EpochBasedTrainLoop', max_epochs=steps) if by_epoch \
        else dict(type='IterBasedTrainLoop', max_iters=steps)
    return Config(dict(train_cfg=dict(loop, **settings), val_cfg=dict(),
                       val_dataloader=dict(), val_evaluator=dict()))


@pytest.mark.parametrize('settings', LOOP_SETTINGS)
@pytest.mark.parametrize('by_epoch', [True, False])
def test_validations_match_mmengine_loops(by_epoch, settings):
    steps = 14
    expected = mmengine_validates(loop_of(by_epoch, steps, settings), steps,
                                  by_epoch)
    length = train_length(config(by_epoch, steps, settings),
                          iters_per_epoch=3)
    assert length.validation_points() == expected
    assert [s for s in range(1, steps + 1)
            if length.validation_after(s)] == expected


def test_dynamic_interval_applies_one_step_early():
    # mmengine picks the interval of the milestone at or before step + 1:
    # with (8, 1) the loop validates after epoch 7 already.
    length = train_length(
        config(True, 12, dict(val_interval=4, dynamic_intervals=[(8, 1)])),
        iters_per_epoch=3)
    assert length.validation_points() == [4, 7, 8, 9, 10, 11, 12]


def test_simulated_iteration_loop_validates_at_the_loop_points():
    settings = dict(val_interval=100, dynamic_intervals=[(500, 50)])
    cfg = config(False, 1000, settings)
    length = train_length(cfg)
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    curves = simulate(build_tracks(OptimWrapper(sgd), [], length), length)
    # 100..400 every 100; from iteration 499 (499 + 1 >= 500) every 50
    assert curves.validations == [100, 200, 300, 400] + list(
        range(500, 1001, 50))
    assert curves.validations == mmengine_validates(
        loop_of(False, 1000, settings), 1000, False)


def test_no_validation_loop_means_no_points():
    length = TrainLength(False, 1, 1000, None, 1, 100, validates=False)
    assert length.validation_points() == []


@pytest.mark.parametrize('pairs', [[(5, 0)], [(8, 2), (4, 1)], [(3, )]])
def test_bad_dynamic_intervals_are_refused(pairs):
    cfg = config(True, 10, dict(val_interval=2, dynamic_intervals=pairs))
    with pytest.raises(ValueError, match='dynamic_intervals'):
        train_length(cfg, iters_per_epoch=3)
