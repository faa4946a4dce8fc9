"""mmlr.launch's checks of the command line: --cfg-options against the
config, the launcher's environment, the checkpoint a run loads."""
import pytest
import torch
from mmengine.config import Config

from conftest import REPO
from mmlr.cfg_options import merge_cfg_options, parse_cfg_options
from mmlr.launch import check_checkpoint_inputs, prepare_config
from mmlr.user_errors import UserError

CONFIG = str(REPO / 'configs/vit_digits.py')


def merged(*items: str) -> Config:
    cfg = Config.fromfile(CONFIG)
    merge_cfg_options(cfg, parse_cfg_options(list(items)))
    return cfg


def test_literals_and_strings_where_the_config_holds_strings_are_taken():
    cfg = merged('train_cfg.max_epochs=3', 'optim_wrapper.optimizer.lr=1e-3',
                 'param_scheduler.1.eta_min=0', 'model.type=mmlr.DigitsViT',
                 # None in the config: a plain string is taken
                 'load_from=work_dirs/a/epoch_3.pth',
                 # not in the config at all
                 'experiment_name=run_[a]')
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.load_from == 'work_dirs/a/epoch_3.pth'
    assert cfg.experiment_name == 'run_[a]'


@pytest.mark.parametrize('item, message', [
    ('param_scheduler.0.begin=[0', "--cfg-options param_scheduler.0.begin=[0:"
     " '[0' is not a Python literal, and the config holds int 0 there"),
    ('optim_wrapper.optimizer.lr=1e-3,', '--cfg-options optim_wrapper.'
     'optimizer.lr=[0.001]: a list where the config holds float 0.002 there'),
    ('train_cfg.max_epochs=ten', "'ten' is not a Python literal, and the "
     'config holds int 30 there'),
    ('optim_wrapper.optimizer=AdamW', "'AdamW' is not a Python literal, and "
     'the config holds ConfigDict'),
    # a key the config does not have: broken brackets are still refused
    ('load_from=[a', "'[a' is not a Python literal (unbalanced brackets or "
     'quotes)'),
    ('param_scheduler.2.end=4', '--cfg-options param_scheduler.2.end: '
     'param_scheduler has 2 items, so no index 2'),
])
def test_values_that_do_not_fit_the_config_are_refused(item, message):
    with pytest.raises(UserError) as error:
        merged(item)
    assert message in str(error.value)


def test_repeated_cfg_options_flags_add_up():
    from conftest import tool_main
    parse_args = tool_main('train').__globals__['parse_args']
    args = parse_args([CONFIG, '--cfg-options', 'a=1', '--cfg-options',
                       'b=2'])
    assert args.cfg_options == {'a': 1, 'b': 2}


def test_launcher_environment_is_checked(monkeypatch):
    for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match='--launcher slurm needs the '
                       'environment variables srun sets; missing: '
                       'SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST'):
        prepare_config(CONFIG, launcher='slurm')
    for name, value in (('RANK', '0'), ('WORLD_SIZE', '1'),
                        ('MASTER_ADDR', '127.0.0.1'), ('MASTER_PORT', '1')):
        monkeypatch.setenv(name, value)
    assert prepare_config(CONFIG, launcher='pytorch').launcher == 'pytorch'


def test_checkpoint_checks(tmp_path, monkeypatch):
    good = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': {'w': torch.ones(2)}},
               good)
    cfg = prepare_config(CONFIG, resume=str(good))
    check_checkpoint_inputs(cfg)  # readable: nothing raised
    cfg = prepare_config(CONFIG, resume=str(tmp_path / 'missing.pth'))
    with pytest.raises(UserError, match='--resume: checkpoint .*missing.pth '
                       'does not exist'):
        check_checkpoint_inputs(cfg)
    # remote paths are fetched by mmengine later
    check_checkpoint_inputs(prepare_config(
        CONFIG, cfg_options={'load_from': 'https://example.com/a.pth'}))

    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', 'true')
    with pytest.raises(UserError, match='TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD '
                       'is set'):
        check_checkpoint_inputs(prepare_config(CONFIG))  # even no checkpoint
    check_checkpoint_inputs(prepare_config(CONFIG, resume=str(good)),
                            trust_checkpoint_code=True)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '0')
    check_checkpoint_inputs(prepare_config(CONFIG))
