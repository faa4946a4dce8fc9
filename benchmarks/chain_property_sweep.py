"""Check the chain property of README's Schedulers section over many fresh
random examples (the suite runs a fixed, derandomized few).

Every example is a list of one to four multiplicative schedulers (mmlr's
ramps and mmengine's ConstantLR, StepLR, MultiStepLR, ExponentialLR and
LinearLR, zeros included) built in two orders; each chain must be refused,
or give every group its lr times the product of the schedulers' own factors,
or be one README calls lossy. The generator and the check are those of
``tests/test_schedulers_linear.py``.

Example:
    python benchmarks/chain_property_sweep.py --examples 5000
"""
import argparse
import collections
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from test_schedulers_linear import check_chain, chains  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--examples', type=int, default=1000,
                        help='random examples to draw (default: 1000)')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed for a repeatable sweep (default: random)')
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error(f'--examples must be >= 1, got {args.examples}')
    outcomes = collections.Counter()

    @settings(max_examples=args.examples, derandomize=False, database=None,
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(chains())
    def sweep(chain):
        specs, order = chain
        outcomes.update(check_chain(specs, [range(len(specs)), order]))

    if args.seed is not None:
        sweep = seed(args.seed)(sweep)
    start = time.perf_counter()
    sweep()
    total = sum(outcomes.values())
    print(f'{args.examples} examples, {total} chains checked in '
          f'{time.perf_counter() - start:.0f} s: ' + ', '.join(
              f'{count} {outcome}'
              for outcome, count in sorted(outcomes.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
