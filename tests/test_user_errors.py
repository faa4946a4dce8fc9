"""Which failures a tool reports as one line (user errors) and which keep
their traceback (bugs)."""
import pytest
import torch
from mmengine.registry import MODELS, OPTIMIZERS

from mmlr.analysis import epoch_length_of
from mmlr.schedulers import LinearDecayLR
from mmlr.user_errors import (UserError, report_user_errors,
                              user_error_message)


def raised(func, *args, **kwargs) -> Exception:
    with pytest.raises(Exception) as info:
        func(*args, **kwargs)
    return info.value


def sgd() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def test_mmlr_config_validation_is_a_user_error():
    # an explicit `raise ValueError(...)` in mmlr's scheduler arguments check
    error = raised(LinearDecayLR, sgd(), end_factor=-1.0, end=5)
    assert isinstance(error, ValueError)
    assert user_error_message(error) == str(error)


def test_a_builtin_failing_inside_mmlr_is_a_bug():
    # math.ceil('10' / 1): a TypeError inside mmlr, but no raise of ours
    error = raised(epoch_length_of, '10', None)
    assert isinstance(error, TypeError)
    assert user_error_message(error) is None


def test_registry_key_error_is_a_user_error_other_key_errors_are_not():
    error = raised(MODELS.build, dict(type='NoSuchNet'))
    assert user_error_message(error).startswith(
        'NoSuchNet is not in the mmengine::model registry.')
    assert user_error_message(raised(lambda: {}['x'])) is None


def test_registry_build_with_an_unknown_argument_is_a_user_error():
    params = [torch.nn.Parameter(torch.zeros(1))]
    error = raised(OPTIMIZERS.build, dict(type='SGD', params=params, lr=0.1,
                                          lrr=1))
    assert user_error_message(error) == (
        "SGD.__init__() got an unexpected keyword argument 'lrr'")


def test_message_is_one_line():
    assert user_error_message(UserError('a\n  b\tc')) == 'a b c'


def test_report_user_errors_prints_one_line_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        with report_user_errors():
            raise UserError('bad --thing: 3')
    assert stopped.value.code == 2
    assert capsys.readouterr().err == 'error: bad --thing: 3\n'


def test_bugs_and_debug_keep_the_exception():
    with pytest.raises(ZeroDivisionError):
        with report_user_errors():
            1 / 0
    with pytest.raises(UserError):
        with report_user_errors(debug=True):
            raise UserError('shown with its traceback')


def test_mmengine_scheduler_argument_checks_are_user_errors():
    from mmengine.optim import LinearLR
    error = raised(LinearLR, sgd(), begin=1, end=1)
    assert user_error_message(error) == (
        'end should be larger than begin, but got begin=1, end=1')
