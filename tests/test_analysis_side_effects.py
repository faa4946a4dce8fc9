"""Using mmlr.analysis (and mmlr.config_build) leaves the process as it
found it: matplotlib's backend, torch.distributed's default process group
and the current MessageHub (a Runner's, when a tool runs inside a training
script)."""
import subprocess
import sys
import uuid

import torch.distributed as dist
from conftest import REPO
from mmengine.logging import MessageHub

from mmlr.analysis import build_tracks, simulate, train_length
from mmlr.config_build import build_model, build_optim_wrapper_of, load_config


def test_import_and_plot_keep_the_matplotlib_backend(tmp_path):
    # a fresh interpreter: in this one mmlr.analysis is imported already
    script = f'''
import matplotlib
matplotlib.use('svg')
import numpy as np
from mmlr.analysis import LrCurves, TrainLength, plot_curves
print(matplotlib.get_backend())
curves = LrCurves('lr', np.ones((10, 1)), ['group 0'], [None], [0],
                  ['group0'], TrainLength(False, 1, 10, None))
plot_curves(curves, {str(tmp_path / 'x.png')!r})
print(matplotlib.get_backend())
'''
    result = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['svg', 'svg']
    assert (tmp_path / 'x.png').stat().st_size > 0


def test_zero_config_leaves_no_process_group():
    cfg = load_config(str(REPO / 'configs/vit_digits_layer_decay_zero.py'))
    model, _ = build_model(cfg)
    assert not dist.is_initialized()
    try:
        wrapper = build_optim_wrapper_of(cfg, model)
        assert type(wrapper.optimizer).__name__ == 'ZeroRedundancyOptimizer'
        assert not dist.is_initialized()
    finally:  # never leak a group into the next test
        if dist.is_initialized():
            dist.destroy_process_group()


def test_simulate_leaves_the_current_message_hub_alone():
    cfg = load_config(str(REPO / 'configs/vit_digits_plateau.py'))
    model, _ = build_model(cfg)
    length = train_length(cfg, iters_per_epoch=5)
    tracks = build_tracks(build_optim_wrapper_of(cfg, model),
                          cfg.param_scheduler, length)
    hub = MessageHub.get_instance(f'runner_{uuid.uuid4().hex}')
    hub.update_info('iter', 7)
    names = list(MessageHub._instance_dict)
    curves = simulate(tracks, length, metrics=[0.5, 0.6, 0.6, 0.6, 0.6])
    # the plateau scheduler saw the iterations of the simulated run ...
    assert curves.validations[:3] == [5, 10, 15]
    assert tracks[0].schedulers[1].last_metric_iter == 25
    # ... in a hub of its own: the current one is unchanged
    assert MessageHub.get_current_instance() is hub
    assert hub.get_info('iter') == 7
    assert list(MessageHub._instance_dict) == names
