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


__all__ = ['parse_metrics']
