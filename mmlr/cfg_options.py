"""``--cfg-options`` and the config file, as every tool reads them.

Values are Python literals, checked against what the config holds at that
key, so a typo is refused naming the key instead of crashing later.
"""
import os.path as osp

from mmengine.config import Config, DictAction

from .user_errors import UserError


def parse_cfg_options(items: list[str]) -> dict:
    """Parse ``KEY=VALUE`` strings as mmengine's ``DictAction`` does.

    Raises:
        UserError: An item without ``=`` or with an empty key, named in the
            message.
    """
    options = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise UserError(f'--cfg-options: expected KEY=VALUE, got '
                            f'{item!r}')
        options[key.strip()] = DictAction._parse_iterable(value)
    return options


def add_cfg_options(parser, example: str) -> None:
    """``--cfg-options KEY=VALUE ...`` as every tool takes it (checked by
    :func:`check_config_args`); ``example`` shows the tool's typical use."""
    # 'extend': a second --cfg-options adds to the first (argparse's
    # default would drop the first without a word).
    parser.add_argument(
        '--cfg-options', nargs='+', action='extend', default=[],
        metavar='KEY=VALUE',
        help=f'override config entries, e.g. {example}; values are parsed '
        'as Python literals, "a,b" as a list; a value that is no literal is '
        'refused unless the config holds a string (or a type) there; '
        'repeating the flag adds to it')


def check_config_args(parser, args) -> None:
    """The checks every tool makes of ``CONFIG`` and ``--cfg-options``:
    report a missing file or an unparsable option through ``parser.error``
    (one line, exit 2) and leave ``args.cfg_options`` parsed."""
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    try:
        args.cfg_options = parse_cfg_options(args.cfg_options)
    except UserError as error:
        parser.error(str(error))


def load_config_file(path: str) -> Config:
    """``Config.fromfile``, with any failure of the user's config file (a
    syntax error, a failing import, ...) as one :class:`UserError`."""
    try:
        return Config.fromfile(path)
    except Exception as error:
        raise UserError(f'config {path}: {type(error).__name__}: '
                        f'{error}') from error


def merge_cfg_options(cfg: Config, options: dict | None) -> None:
    """Apply parsed ``--cfg-options`` to ``cfg``, refusing values that are
    not what the config holds there.

    ``DictAction`` passes a value it cannot parse as a Python literal on as
    a string (``[0`` stays ``'[0'``) and reads a trailing comma as a list
    (``1e-3,`` is ``[0.001]``); either would fail much later, far from the
    option. So a string is refused where the config holds a number, a bool,
    a dict or a list without strings, and a list where it holds a number or
    a bool. Where the config holds a string, a type, ``None`` or nothing, a
    string is taken unless it is broken literal syntax (unbalanced
    brackets or quotes).

    Raises:
        UserError: Naming the key, the value and what the config holds.
    """
    for key, value in (options or {}).items():
        _check_list_indices(cfg, key)
        found, current = _config_value(cfg, key)
        problem = _option_problem(value, current if found else None)
        if problem:
            raise UserError(f'--cfg-options {key}={_shown(value)}: '
                            f'{problem}')
    if options:
        try:
            cfg.merge_from_dict(options)
        except (KeyError, TypeError) as error:
            text = error.args[0] if error.args else error
            raise UserError(f'--cfg-options: {text}') from error


def _config_value(cfg: Config, key: str) -> tuple[bool, object]:
    first, *rest = key.split('.')
    if first not in cfg:
        return False, None
    node = cfg[first]
    for part in rest:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _check_list_indices(cfg: Config, key: str) -> None:
    # mmengine's own message names the index but not the key.
    parts = key.split('.')
    node = cfg.get(parts[0])
    for depth, part in enumerate(parts[1:], start=1):
        if isinstance(node, (list, tuple)) and part.isdigit():
            if int(part) >= len(node):
                raise UserError(
                    f'--cfg-options {key}: {".".join(parts[:depth])} has '
                    f'{len(node)} items, so no index {part}')
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return


def _strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings_in(item)]
    return []


def _option_problem(value, current) -> str | None:
    scalar = isinstance(current, (bool, int, float))
    held = f'the config holds {type(current).__name__} {current!r} there'
    if scalar and isinstance(value, (list, tuple)):
        return (f'a list where {held} (a trailing comma makes a list)')
    strings = _strings_in(value)
    if not strings:
        return None
    if isinstance(current, str) or (isinstance(current, (list, tuple))
                                    and _strings_in(current)):
        return None
    if scalar or isinstance(current, (dict, list, tuple)):
        return f'{strings[0]!r} is not a Python literal, and {held}'
    broken = next((s for s in strings if _broken_literal(s)), None)
    if broken is not None:
        return f'{broken!r} is not a Python literal (unbalanced brackets ' \
            'or quotes)'
    return None


def _broken_literal(text: str) -> bool:
    if text.count('"') % 2 or text.count("'") % 2:
        return True
    depth = 0
    for char in text:
        depth += (char in '([{') - (char in ')]}')
        if depth < 0:
            return True
    return depth != 0


def _shown(value) -> str:
    return value if isinstance(value, str) else repr(value)


__all__ = [
    'parse_cfg_options', 'add_cfg_options', 'check_config_args',
    'load_config_file', 'merge_cfg_options'
]
