"""Synthetic validation metrics for plateau schedulers (``--metrics``)."""
import os.path as osp


def parse_metrics(text: str) -> list[float]:
    """Read a metric sequence: inline (``'0.5,0.6,0.6'``) or from a file of
    numbers separated by commas, spaces or new lines.

    Args:
        text (str): The numbers, or the path of a file holding them.

    Returns:
        list[float]: One value per validation, in order.

    Example:
        >>> parse_metrics('0.5, 0.6,0.6')
        [0.5, 0.6, 0.6]
    """
    if osp.isfile(text):
        with open(text) as f:
            text = f.read()
    items = text.replace(',', ' ').split()
    try:
        values = [float(item) for item in items]
    except ValueError as error:
        raise ValueError(
            f'--metrics takes numbers separated by commas or spaces, or a '
            f'file of them; {error}') from error
    if not values:
        raise ValueError('--metrics is empty')
    return values


def metrics_coverage(metrics: list[float], validations: list[int]
                     ) -> str | None:
    """What a simulation assumed where ``--metrics`` and the run's
    validations differ in number, or None when every validation got one.

    Args:
        metrics (list[float]): From :func:`parse_metrics`.
        validations (list[int]): The iterations after which the run
            validates.

    Example:
        >>> print(metrics_coverage([0.5, 0.6], [45, 90, 135, 180]))
        --metrics has 2 values for 4 validations: the last 2 (from the one
        after iteration 135 on) got no value, so plateau schedulers kept
        their lr there
    """
    given, needed = len(metrics), len(validations)
    if given < needed:
        missing = needed - given
        return (f'--metrics has {given} values for {needed} validations: '
                f'the last {missing} (from the one after iteration '
                f'{validations[given]} on) got no value, so plateau '
                'schedulers kept their lr there')
    if given > needed:
        return (f'--metrics has {given} values for {needed} validations: '
                f'the last {given - needed} were not used')
    return None
