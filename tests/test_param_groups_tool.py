"""tools/param_groups.py on ours and mmengine's constructor, on the meta
device (ViT-B/16), with the per-parameter CSV."""
import csv

import pytest
from conftest import REPO, tool_main, user_error_line


def table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.split()[:2] == ['group', 'layer'])
    return [line.split() for line in lines[start + 1:]
            if line.strip() and line.split()[0].isdigit()]


param_groups_main = tool_main('param_groups')


def printed(capsys, *argv: str) -> str:
    """What ``tools/param_groups.py ARGV`` prints, run in this process."""
    capsys.readouterr()
    param_groups_main([str(REPO / argv[0]), *argv[1:]])
    return capsys.readouterr().out


def test_layer_decay_table_and_per_param_csv(tmp_path, capsys):
    out = tmp_path / 'params.csv'
    rows = table_rows(printed(capsys, 'configs/vit_digits_layer_decay.py',
                              '--per-param', str(out)))
    assert len(rows) == 12
    for row in rows:  # lr = 2e-3 * 0.75 ** (5 - layer)
        assert float(row[2]) == pytest.approx(
            2e-3 * 0.75**(5 - int(row[1])), rel=1e-3)
    with open(out) as f:
        params = {r['name']: r for r in csv.DictReader(f)}
    assert len(params) == 56
    head = params['backbone.head.weight']
    assert (float(head['lr']), float(head['weight_decay'])) == (2e-3, 0.05)
    assert float(params['backbone.pos_embed']['weight_decay']) == 0.0
    assert params['backbone.pos_embed']['depth_source'] == 'group_matcher'
    assert params['backbone.blocks.0.attn.qkv.weight']['shape'] == '192x64'


def test_mmengine_default_constructor(capsys):
    out = printed(capsys, 'configs/vit_digits.py')
    assert 'DefaultOptimWrapperConstructor' in out
    # mmengine without paramwise_cfg: every tensor in one group at the lr
    (row, ) = table_rows(out)
    assert row[2:6] == ['2.000e-03', '1', '0.05', '56']


def test_vit_b_mae_recipe_on_meta(capsys):
    out = printed(capsys, 'configs/vit_base_mae_finetune.py')
    assert 'model on meta' in out
    rows = table_rows(out)
    # 12 blocks + embedding + head = 14 layer ids, decayed and not: 28
    assert len(rows) == 28
    assert sum(int(r[5]) for r in rows) == 152
    # head first (the lr mmengine logs), patch embedding last:
    # 2e-3 * 0.65 ** 13
    assert float(rows[0][2]) == 2e-3
    assert float(rows[-1][2]) == pytest.approx(2e-3 * 0.65**13, rel=1e-3)
    # ViT-B/16 has 86,567,656 parameters (timm, 1000 classes)
    assert sum(int(r[6]) for r in rows) == 86_567_656


def test_linear_probe_counts_frozen(capsys):
    assert '54 frozen left out' in printed(
        capsys, 'configs/vit_digits_linear_probe.py')


DIGITS = str(REPO / 'configs/vit_digits.py')
LAYER_DECAY = ['optim_wrapper.constructor=LayerDecayOptimWrapperConstructor',
               'optim_wrapper.paramwise_cfg.layer_decay_rate=0.75']


def test_bad_paramwise_key_is_one_line_naming_it(capsys):
    # the constructor's own message, without its traceback
    line = user_error_line(capsys, param_groups_main, DIGITS,
                           '--cfg-options', *LAYER_DECAY,
                           'optim_wrapper.paramwise_cfg.decay_multi=0.0')
    assert line.startswith("error: unknown paramwise_cfg key 'decay_multi'")


def test_unknown_model_type_is_one_line_without_a_cpu_retry(capsys):
    line = user_error_line(capsys, param_groups_main, DIGITS,
                           '--cfg-options', 'model.type=mmlr.NoSuchNet')
    assert line.startswith('error: mmlr.NoSuchNet is not in the '
                           'mmengine::model registry.')


def test_unknown_optimizer_argument_is_one_line(capsys):
    line = user_error_line(capsys, param_groups_main, DIGITS,
                           '--cfg-options', 'optim_wrapper.optimizer.lrr=1')
    assert line == ("error: AdamW.__init__() got an unexpected keyword "
                    "argument 'lrr'")


def test_debug_flag_shows_the_traceback():
    with pytest.raises(ValueError, match="unknown paramwise_cfg key"):
        param_groups_main([DIGITS, '--debug', '--cfg-options', *LAYER_DECAY,
                           'optim_wrapper.paramwise_cfg.decay_multi=0.0'])


def test_trunk_source_names_the_module_it_took(capsys):
    # the README's example: the digits ViT's 4 blocks under backbone.blocks
    out = printed(capsys, 'configs/vit_digits_layer_decay.py', '--cfg-options',
                  'optim_wrapper.paramwise_cfg.depth_source=trunk')
    assert 'layer depths from: trunk backbone.blocks, 4 blocks' in out
