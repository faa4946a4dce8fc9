"""Which failures of a tool are the user's, and how a tool reports them.

A user error (a bad config, argument or checkpoint path) ends a tool with
one line, ``error: <what and which key>``, on stderr and exit code 2; the
traceback would only bury that line. Everything else is a bug of ours or of
a library and keeps its traceback. A user error is:

- a :class:`UserError`, raised by the tools' own checks;
- a ``ValueError``, ``TypeError`` or ``KeyError`` that mmlr's own code, or
  mmengine's parameter schedulers, raise with an explicit ``raise`` (their
  checks of config arguments: the messages name the argument);
- mmengine's registry ``KeyError`` for a type name it does not know, and a
  ``TypeError`` of a registry build whose arguments do not fit the class
  (an unknown or missing keyword in the config).

Example:
    >>> def main(argv=None):
    ...     args = parse_args(argv)  # ToolArgumentParser: one line, exit 2
    ...     with report_user_errors(args.debug):
    ...         run(args)
"""
import argparse
import linecache
import os.path as osp
import re
import sys
from contextlib import contextmanager
from typing import Iterator

# Code whose explicit raises of ValueError/TypeError/KeyError check the
# user's arguments.
_CHECKING_CODE = (osp.dirname(osp.abspath(__file__)) + osp.sep,
                  osp.join('mmengine', 'optim', 'scheduler', ''))
_REGISTRY_BUILD = osp.join('mmengine', 'registry', 'build_functions.py')
_UNKNOWN_TYPE = re.compile(r'is not in the \S+ registry')
_BAD_ARGUMENTS = re.compile(r'unexpected keyword argument|missing \d+ '
                            r'required (positional|keyword)')


class UserError(ValueError):
    """A problem with what the user gave (config, flag, file), with a
    message that names it; tools print it as one ``error:`` line."""


def user_error_message(error: BaseException) -> str | None:
    """The one-line message of ``error`` if it is a user error (see the
    module docstring), else None (a bug: it keeps its traceback)."""
    if isinstance(error, UserError):
        return _one_line(error)
    if isinstance(error, KeyError) and _UNKNOWN_TYPE.search(_text(error)):
        return _one_line(error)
    if isinstance(error, TypeError) and _raised_in(error, _REGISTRY_BUILD) \
            and _BAD_ARGUMENTS.search(_text(error)):
        return _one_line(error)
    if isinstance(error, (ValueError, TypeError, KeyError)) and \
            _raised_by_checks(error):
        return _one_line(error)
    return None


@contextmanager
def report_user_errors(debug: bool = False) -> Iterator[None]:
    """Turn a user error raised inside the block into ``error: ...`` on
    stderr and ``SystemExit(2)``; with ``debug`` (a tool's ``--debug``) or
    for any other exception, let it propagate with its traceback."""
    try:
        yield
    except Exception as error:
        message = user_error_message(error)
        if message is None or debug:
            raise
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(2) from None


class ToolArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are the one line
    ``error: <message>`` (exit code 2) the tools print for every user
    error, and which adds ``--debug``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument(
            '--debug', action='store_true',
            help='show the traceback of an error in the input instead of '
            'the one-line message')

    def error(self, message: str):
        self.exit(2, f'error: {message} (see --help)\n')


def _text(error: BaseException) -> str:
    # str(KeyError('x')) is "'x'": use the message itself.
    if error.args and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def _one_line(error: BaseException) -> str:
    return ' '.join(_text(error).split()) or type(error).__name__


def _raised_in(error: BaseException, path_tail: str) -> bool:
    frame = _innermost(error)
    return frame is not None and frame.tb_frame.f_code.co_filename.endswith(
        path_tail)


def _raised_by_checks(error: BaseException) -> bool:
    """Whether an explicit ``raise`` statement in mmlr's package or in
    mmengine's schedulers raised it (not a built-in failing inside that
    code, which is a bug)."""
    tb = _innermost(error)
    if tb is None:
        return False
    filename = osp.abspath(tb.tb_frame.f_code.co_filename)
    return (filename.startswith(_CHECKING_CODE[0])
            or _CHECKING_CODE[1] in filename) and \
        linecache.getline(filename, tb.tb_lineno).lstrip().startswith('raise')


def _innermost(error: BaseException):
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


__all__ = ['UserError', 'user_error_message', 'report_user_errors',
           'ToolArgumentParser']
