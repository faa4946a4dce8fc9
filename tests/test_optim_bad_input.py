"""Bad ``paramwise_cfg`` input to LayerDecayOptimWrapperConstructor: wrong
types and values fail when the optimizer is built, naming the key; entries
that match nothing in the model are an error (freeze) or one WARNING line
(custom keys, depth rules, a layer decay that decays nothing)."""
import logging

import pytest
import torch.nn as nn
from mmengine.logging import MMLogger
from test_optim_constructor import TinyViT, build, per_param


class Classifier(nn.Module):
    """The OpenMMLab layout: a backbone (with its own ``head``) and a head.
    """

    def __init__(self):
        super().__init__()
        self.backbone = TinyViT()
        self.head = nn.Linear(4, 2)


@pytest.fixture
def warnings() -> list:
    """The messages logged at WARNING or above through mmengine's logger."""
    logger = MMLogger.get_current_instance()
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


NAN = float('nan')


@pytest.mark.parametrize('paramwise_cfg, message', [
    # strings where numbers belong: were a format error in the table and a
    # "can't multiply sequence" from deep inside the build
    (dict(custom_keys={'head': dict(lr='1e-2')}),
     "custom_keys['head'].lr must be a number >= 0, got '1e-2' (str)"),
    (dict(custom_keys={'head': dict(lr_mult='10')}),
     "custom_keys['head'].lr_mult must be a number >= 0, got '10' (str)"),
    (dict(custom_keys={'head': dict(decay_mult=None)}),
     "custom_keys['head'].decay_mult must be a number >= 0, got None"),
    # float('2') used to accept it
    (dict(bias_lr_mult='2'),
     "paramwise_cfg.bias_lr_mult must be a number >= 0, got '2' (str)"),
    # negative or NaN multipliers: negative lrs, a NaN loss
    (dict(bias_lr_mult=-1.0),
     'paramwise_cfg.bias_lr_mult must be a finite number >= 0, got -1.0'),
    (dict(bias_lr_mult=NAN),
     'paramwise_cfg.bias_lr_mult must be a finite number >= 0, got nan'),
    (dict(norm_decay_mult=float('inf')),
     'paramwise_cfg.norm_decay_mult must be a finite number >= 0, got inf'),
    (dict(custom_keys={'head': dict(lr_mult=-10.0)}),
     "custom_keys['head'].lr_mult must be a finite number >= 0, got -10.0"),
    (dict(custom_keys={'head': dict(weight_decay=-0.1)}),
     "custom_keys['head'].weight_decay must be a finite number >= 0"),
    # other optimizer arguments: the type of AdamW's default
    (dict(custom_keys={'head': dict(amsgrad='false')}),
     "custom_keys['head'].amsgrad must be True or False, like the "
     "optimizer's default False, got 'false'"),
    (dict(custom_keys={'head': dict(betas=0.9)}),
     "custom_keys['head'].betas must be 2 numbers, like the optimizer's "
     'default (0.9, 0.999), got 0.9'),
    (dict(custom_keys={'head': dict(eps=NAN)}),
     "custom_keys['head'].eps must be finite, got nan"),
    (dict(custom_keys={1: dict(lr_mult=0.1)}),
     'custom_keys must be a dict of dicts with string keys'),
    # bool('false') is True
    (dict(model_hints='false'),
     "paramwise_cfg.model_hints must be True or False, got 'false'"),
    (dict(bypass_duplicate=1),
     'paramwise_cfg.bypass_duplicate must be True or False, got 1'),
    (dict(freeze=['blocks', 0]),
     "paramwise_cfg.freeze must be a module path or a list of them"),
    (dict(freeze_backbone='1'),
     "paramwise_cfg.freeze_backbone must be a list of level indices"),
    (dict(keep_trainable=['head']),
     'keep_trainable exempts parameters from freeze, but freeze (or '
     'freeze_backbone) is empty'),
])
def test_bad_types_and_values_fail_at_build_naming_the_key(
        paramwise_cfg, message):
    with pytest.raises((TypeError, ValueError)) as error:
        build(TinyViT(), paramwise_cfg)
    assert message in str(error.value)


def trainable(model) -> set:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_a_string_freeze_path_is_one_path():
    # list('backbone') were one-letter paths that froze nothing; a string is
    # taken as a list of one, as paramwise_cfg.backbone already is.
    model = Classifier()
    build(model, dict(freeze='backbone', keep_trainable='backbone.head'))
    assert trainable(model) == {
        'backbone.head.weight', 'backbone.head.bias', 'head.weight',
        'head.bias'
    }


@pytest.mark.parametrize('paramwise_cfg, message', [
    (dict(freeze=['backbone.nonexistent']),
     "paramwise_cfg.freeze path 'backbone.nonexistent' matches no "
     'parameter of Classifier'),
    (dict(freeze=['backbone.patch_embd']),
     "freeze path 'backbone.patch_embd' matches no parameter of Classifier "
     "(did you mean 'backbone.patch_embed'?)"),
    # freeze_backbone=[3] is InternVL's spelling of levels.3
    (dict(freeze_backbone=[3]), "freeze path 'levels.3' matches no"),
    (dict(freeze='backbone', keep_trainable='backbone.haed'),
     "keep_trainable path 'backbone.haed' matches no parameter that "
     "freeze=['backbone'] freezes, so it keeps nothing trainable (did you "
     "mean 'backbone.head'?)"),
    # head is not frozen: keeping it changes nothing
    (dict(freeze='backbone.blocks', keep_trainable='head'),
     "keep_trainable path 'head' matches no parameter that "
     "freeze=['backbone.blocks'] freezes"),
])
def test_freeze_paths_that_match_nothing_are_an_error(paramwise_cfg, message):
    model = Classifier()
    with pytest.raises(ValueError) as error:
        build(model, paramwise_cfg)
    assert message in str(error.value)
    assert trainable(model) == {n for n, _ in model.named_parameters()}


def test_custom_key_matching_nothing_warns_with_the_nearest_name(warnings):
    model = Classifier()
    lr_wd = per_param(
        model,
        build(model, dict(custom_keys={
            'backbone.haed': dict(lr_mult=10.0),
            '.cls_token': dict(decay_mult=0.0),  # matches: no warning
            'blocks.0': dict(lr_mult=0.5),  # matches: no warning
        })))
    assert warnings == [
        "paramwise_cfg.custom_keys['backbone.haed'] matches no parameter of "
        "Classifier and sets nothing (did you mean 'backbone.head'?)"
    ]
    # and indeed it set nothing; the matching keys did
    assert lr_wd['backbone.head.weight'] == pytest.approx((1e-3, 0.05))
    assert lr_wd['backbone.cls_token'] == pytest.approx((1e-3, 0.0))
    assert lr_wd['backbone.blocks.0.1.weight'] == pytest.approx((5e-4, 0.05))


def plain_convs():
    # No run of repeated blocks with children of their own: no trunk.
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
        nn.Conv2d(8, 4, 1))


@pytest.mark.parametrize('make_model, paramwise_cfg, reason, example', [
    (plain_convs, dict(layer_decay_rate=0.5),
     "no run of repeated blocks was found in 'Sequential'", '0.weight'),
    (TinyViT, dict(layer_decay_rate=0.5, depth_rules=[(r'^blcks\.', 1)]),
     'no depth_rules regex matches a parameter name', 'blocks.0.0.weight'),
])
def test_layer_decay_that_decays_nothing_warns(warnings, make_model,
                                               paramwise_cfg, reason,
                                               example):
    model = make_model()
    groups = build(model, paramwise_cfg).optimizer.param_groups
    # every parameter at the top layer: rate ** 0 = 1, the optimizer's lr
    assert {g['lr'] for g in groups} == {1e-3}
    [warning] = warnings
    assert warning.startswith(
        f'layer decay (rate 0.5) decays nothing: {reason}, so every group '
        'got the full lr. Give depths with paramwise_cfg.depth_rules=[(regex,'
        ' depth), ...] (regexes are searched in parameter names such as '
        f'{example!r})')


def test_one_depth_rule_matching_nothing_warns(warnings):
    model = TinyViT()
    build(model, dict(layer_decay_rate=0.5,
                      depth_rules=[(r'^blocks\.', 1), (r'^patch_embd\.', 0)]))
    assert warnings == [
        "paramwise_cfg.depth_rules ('^patch_embd\\\\.', 0) matches no "
        'parameter name; the names it was meant for get another depth or the '
        'full lr'
    ]


def test_a_config_that_matches_everything_warns_nothing(warnings):
    # The warnings above come from the entries that match nothing, not from
    # layer decay or custom keys as such.
    model = Classifier()
    build(model, dict(layer_decay_rate=0.5, freeze='backbone.patch_embed',
                      custom_keys={'head': dict(lr_mult=10.0)},
                      depth_rules=[(r'^backbone\.blocks\.', 1)]))
    assert warnings == []
    assert 'backbone.patch_embed.weight' not in trainable(model)
