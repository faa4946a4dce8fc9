"""What the mmlr ramps scheduling one value of one optimizer share: each
group's value beneath all the factors applied to it."""
import weakref


class RampMemory:
    """Each optimizer group's value beneath the factors of the ramps that
    move it.

    The value a group holds is always ``beneath * (product of the factors
    the ramps moving that group applied last)``. A ramp about to step first
    takes in what other schedulers wrote into its groups since a ramp last
    did (``beneath = value / product``); while a group's product is 0 (a
    ramp holds it at 0) nothing can be seen beneath it and ``beneath`` is
    kept. Because every ramp divides out the product of *all* ramps on the
    group, not only its own factor, a zero of one ramp hides nothing of the
    others: ramps compose exactly, in any order. What other schedulers do
    while the value is 0 is lost (they multiply 0).

    Ramps may move only some groups (a ramp inside
    :class:`~mmlr.schedulers.GroupSelect`): each ramp joins with the indices
    of its groups in the whole optimizer, and a group's product counts only
    the ramps that move it.

    Worked example, lr 0.1: a decay from 1 to 0 over 10 steps listed before
    a warm-up from 0 over 20. Step 0: beneath 0.1, factors 1 and 0, value
    0. Step 1: the product is 0, so beneath stays 0.1; factors 0.9 and 1/20,
    value 0.1 * 0.9 / 20 = 0.0045, in either order. (A ramp that kept only
    the value beneath its own factor would read 0 beneath the decay and
    lose its 0.9.)
    """

    def __init__(self):
        self.ramps: list[tuple[weakref.ref, tuple]] = []
        # The indices of all the optimizer's groups, shared by the ramps on
        # all of them (the usual list): their steps take one pass each.
        self.whole: tuple | None = None
        self.dropped = False  # a ramp went away since the last step
        # Per group index of the whole optimizer (None: not known yet).
        self.beneath: list = []
        # The objects the ramps last wrote into each group: a group that
        # still holds the very same object has not been changed by anyone
        # since (an identity test, which is cheap).
        self.written: list = []

    def join(self, ramp, groups: tuple) -> None:
        self.ramps.append((weakref.ref(ramp, self._dropped), groups))
        missing = max(groups, default=-1) + 1 - len(self.beneath)
        if missing > 0:
            self.beneath += [None] * missing
            self.written += [None] * missing

    def leave(self, ramp) -> None:
        self.ramps = [(r, g) for r, g in self.ramps if r() not in (None, ramp)]

    def _dropped(self, ref: weakref.ref) -> None:
        self.dropped = True

    def _uniform_product(self, groups: tuple) -> float | None:
        # The product of the applied factors when every ramp that applied
        # one moves exactly ``groups``; None otherwise.
        product = 1.0
        for ref, members in self.ramps:
            ramp = ref()
            if ramp is not None and ramp._applied_factor is not None:
                if members is not groups and members != groups:
                    return None
                product *= ramp._applied_factor
        return product

    def products(self, groups: tuple) -> list[float]:
        """For each of ``groups``, the product of the factors the ramps
        moving it applied last (1 for a ramp that has not started)."""
        product = self._uniform_product(groups)
        if product is not None:  # the usual list: one product for all
            return [product] * len(groups)
        by_group: dict[int, float] = {}
        for ref, members in self.ramps:
            ramp = ref()
            if ramp is not None and ramp._applied_factor is not None:
                for group in members:
                    by_group[group] = by_group.get(group, 1.0) * \
                        ramp._applied_factor
        return [by_group.get(group, 1.0) for group in groups]

    def take_in(self, groups: tuple, param_groups: list, param: str) -> None:
        """Update ``beneath`` of ``groups`` from the ``param`` values their
        ``param_groups`` hold."""
        if self.dropped:
            # A ramp was dropped (a list built and discarded; its factor is
            # no longer divided out): read every group's value again.
            self.dropped = False
            self.ramps = [(r, g) for r, g in self.ramps if r() is not None]
            self.written = [None] * len(self.written)
        beneath, written = self.beneath, self.written
        product = self._uniform_product(groups)
        if product and groups is self.whole and None not in beneath:
            self.beneath = [
                b if group[param] is w else group[param] / product
                for group, w, b in zip(param_groups, written, beneath)
            ]
            return
        for group, value, product in zip(
                groups, [g[param] for g in param_groups],
                self.products(groups)):
            if product and value is not written[group]:
                beneath[group] = value / product
            elif beneath[group] is None:  # the first ramp to step on it
                beneath[group] = value
            # else a ramp holds the value at 0: keep what we had

    def values(self, groups: tuple) -> list:
        """The value of each of ``groups``: beneath times its factors."""
        product = self._uniform_product(groups)
        if product is not None and groups is self.whole:
            self.written = [b * product for b in self.beneath]
            return self.written
        beneath, written = self.beneath, self.written
        values = [beneath[group] * product for group, product
                  in zip(groups, self.products(groups))]
        for group, value in zip(groups, values):
            written[group] = value
        return values

    def beneath_of(self, groups: tuple) -> list:
        """``beneath`` of ``groups`` ([] before any ramp stepped on them)."""
        values = [self.beneath[group] for group in groups]
        return [] if None in values else values

    def restore(self, groups: tuple, beneath: list) -> None:
        if len(beneath) != len(groups):
            return  # saved before any ramp stepped on these groups
        for group, value in zip(groups, beneath):
            self.beneath[group] = value
            self.written[group] = None


# optimizer -> {param_name: RampMemory}; weak, so a memory goes with its
# optimizer and nothing is added to the optimizer object itself.
_MEMORIES: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def ramp_memory(optimizer, param_name: str) -> tuple[RampMemory, tuple]:
    """The memory shared by the ramps of ``param_name`` on ``optimizer``,
    and the indices of ``optimizer``'s groups in it.

    A selection of groups (``GroupSelect``'s view, which names the whole
    optimizer as ``selected_from`` and its groups' indices there as
    ``group_indices``) shares the memory of the whole optimizer, so ramps on
    all groups and ramps on some compose exactly.
    """
    whole = getattr(optimizer, 'selected_from', None)
    memories = _MEMORIES.setdefault(optimizer if whole is None else whole, {})
    memory = memories.setdefault(param_name, RampMemory())
    if whole is not None:
        return memory, tuple(optimizer.group_indices)
    count = len(optimizer.param_groups)
    if memory.whole is None or len(memory.whole) != count:
        memory.whole = tuple(range(count))
    return memory, memory.whole
