"""The circuit tree the allocation shares current in, and its compiled form.

A circuit is anything with a breaker or a contract behind it: the grid
connection, a charging group's feeder, a station's supply line. Each circuit
may limit the current on every site phase (deciamps) and, optionally, its
total power (watts, turned into a limit on the sum of the phase currents at
the nominal voltage). Connectors hang below circuits.

``CircuitTree.compile()`` flattens the tree into numbered constraints, one per
(circuit, site phase) plus one per power limit, and gives every connector the
list of constraint numbers its current passes through. A circuit with only
fixed 3-phase connectors below and one limit for all phases loads every phase
alike: its three phase constraints are one, passed once. The allocation then
works on flat integer lists only, which is what makes 1,000 connectors cheap.

The root circuit is the grid connection: its capacity changes every cycle
(measured non-EV load, external caps), so the layout only stores its static
limit. Below the root, a constraint that can never bind (its limit is at least
what every connector below it could draw at its maximum) is left out.
"""

from edge.core.errors import ValidationError

PHASES = (0, 1, 2)
FULL = 0   # a connector using all its phases
ONE = 1    # a phase-switching connector switched to one phase (its wiring[0])
DEFAULT_VOLTAGE_V = 230
_BIG = 1 << 40


class CircuitSpec:
    def __init__(self, cid, parent, max_da, max_power_w, margin_da):
        self.id = cid
        self.parent = parent          # CircuitSpec or None for the root
        self.max_da = max_da          # tuple of 3 (int or None) per site phase
        self.max_power_w = max_power_w
        self.margin_da = margin_da


class ConnectorSpec:
    def __init__(self, key, circuit, phases, wiring, min_da, max_da, can_switch_phases):
        self.key = key                # (station_id, connector_id)
        self.circuit = circuit        # CircuitSpec it hangs under
        self.phases = phases
        self.wiring = wiring          # tuple of site phase indexes, connector phase 1 first
        self.min_da = min_da
        self.max_da = max_da
        self.can_switch_phases = can_switch_phases


class CircuitTree:
    """Builder: add the root, then circuits under it, then connectors."""

    def __init__(self, voltage_v=DEFAULT_VOLTAGE_V):
        if not isinstance(voltage_v, int) or isinstance(voltage_v, bool) or not 100 <= voltage_v <= 400:
            raise ValidationError("voltage_v", voltage_v, "must be a whole number of volts from 100 to 400")
        self.voltage_v = voltage_v
        self.root = None
        self.circuits = {}
        self.connectors = []
        self._keys = {}
        self._layout = None

    def add_circuit(self, cid, parent=None, max_da=None, max_power_w=None, margin_da=0):
        field = "circuits[%r]" % (cid,)
        if cid in self.circuits:
            raise ValidationError(field, cid, "duplicate circuit id")
        limits = _phase_limits(max_da, field + ".max_da")
        if max_power_w is not None:
            _need_int(max_power_w, field + ".max_power_w", 1)
        _need_int(margin_da, field + ".margin_da", 0)
        if parent is None:
            if self.root is not None:
                raise ValidationError(field + ".parent", parent, "the tree already has a root (%r)" % (self.root.id,))
            for p in PHASES:
                if limits[p] is None:
                    raise ValidationError(field + ".max_da", max_da, "the root needs a limit on every phase")
            spec = CircuitSpec(cid, None, limits, max_power_w, margin_da)
            self.root = spec
        else:
            up = self.circuits.get(parent)
            if up is None:
                raise ValidationError(field + ".parent", parent, "unknown circuit")
            spec = CircuitSpec(cid, up, limits, max_power_w, margin_da)
        self.circuits[cid] = spec
        self._layout = None
        return spec

    def add_connector(self, key, circuit, phases, wiring, min_da, max_da, can_switch_phases=False):
        field = "connectors[%r]" % (key,)
        if key in self._keys:
            raise ValidationError(field, key, "duplicate connector")
        spec = self.circuits.get(circuit)
        if spec is None:
            raise ValidationError(field + ".circuit", circuit, "unknown circuit")
        if phases not in (1, 2, 3) or isinstance(phases, bool):
            raise ValidationError(field + ".phases", phases, "must be 1, 2 or 3")
        wiring = tuple(wiring) if isinstance(wiring, (list, tuple)) else wiring
        if not isinstance(wiring, tuple) or len(wiring) != phases or len(set(wiring)) != phases \
                or any(p not in PHASES or isinstance(p, bool) for p in wiring):
            raise ValidationError(field + ".wiring", wiring, "must name %d distinct site phases 0..2" % phases)
        _need_int(min_da, field + ".min_da", 0)
        _need_int(max_da, field + ".max_da", 1)
        if min_da > max_da:
            raise ValidationError(field + ".min_da", min_da, "must not exceed max_da (%d)" % max_da)
        if can_switch_phases is not True and can_switch_phases is not False:
            raise ValidationError(field + ".can_switch_phases", can_switch_phases, "must be true or false")
        if can_switch_phases and phases == 1:
            raise ValidationError(field + ".can_switch_phases", can_switch_phases,
                                  "a 1-phase connector cannot switch phases")
        c = ConnectorSpec(key, spec, phases, wiring, min_da, max_da, can_switch_phases)
        self._keys[key] = len(self.connectors)
        self.connectors.append(c)
        self._layout = None
        return c

    def compile(self):
        if self.root is None:
            raise ValidationError("circuits", None, "the tree has no root circuit")
        if self._layout is None:
            self._layout = Layout(self)
        return self._layout


class Layout:
    """Flat form of a CircuitTree. Read-only once built; shared by every cycle.

    cap[k]            static capacity of constraint k (root ones: before margin
                      and measured load, which the allocation applies)
    root_phase[p]     constraint number of the root's phase p
    root_sum          constraint number of the root's power limit, or None
    sum_volt_k        set of power constraints (their cap is a sum of currents)
    keys[i], index    connector number <-> key
    path[i][mode]     constraint numbers connector i loads (a power constraint
                      appears once per phase loaded), mode FULL or ONE
    members[k][mode]  connector numbers whose path in that mode passes k
    """

    def __init__(self, tree):
        self.voltage_v = tree.voltage_v
        self.root = tree.root
        self.specs = list(tree.connectors)
        self.keys = [c.key for c in self.specs]
        self.index = {}
        for i, key in enumerate(self.keys):
            self.index[key] = i
        self.cap = []
        self.label = []
        self._phase_k = {}    # (circuit id, phase) -> k
        self._sum_k = {}      # circuit id -> k
        self._triple_k = {}   # circuit id -> k, one constraint for all three phases
        self._add_root()
        self._add_inner(tree)
        self.has_sums = len(self._sum_k) > 0
        self.path = []
        self.members = [([], []) for _ in self.cap]
        for i, c in enumerate(self.specs):
            full = self._path_for(c, c.wiring)
            one = self._path_for(c, c.wiring[:1]) if c.can_switch_phases else full
            self.path.append((full, one))
            for k in full:
                lst = self.members[k][FULL]
                if not lst or lst[-1] != i:
                    lst.append(i)
            if c.can_switch_phases:
                for k in one:
                    lst = self.members[k][ONE]
                    if not lst or lst[-1] != i:
                        lst.append(i)
        self.n = len(self.specs)
        self.m = len(self.cap)
        self._add_root_bound(tree)
        # Per-connector columns: the allocation reads these thousands of times a cycle.
        self.min_da = [c.min_da for c in self.specs]
        self.max_da = [c.max_da for c in self.specs]
        self.phases = [c.phases for c in self.specs]
        self.switch = [c.can_switch_phases for c in self.specs]
        self.idle = [(0, c.phases) for c in self.specs]    # the target of a connector without a session

    def _add_root(self):
        r = self.root
        self.root_phase = []
        for p in PHASES:
            self._phase_k[(r.id, p)] = len(self.cap)
            self.root_phase.append(len(self.cap))
            self.cap.append(r.max_da[p])
            self.label.append((r.id, p))
        self.root_sum = None
        if r.max_power_w is not None:
            self.root_sum = len(self.cap)
            self._sum_k[r.id] = self.root_sum
            self.cap.append(r.max_power_w * 10 // self.voltage_v)
            self.label.append((r.id, "power"))

    def _add_inner(self, tree):
        # What every connector below a circuit could draw, per phase and summed:
        # a limit at or above that can never bind and costs time in every cycle.
        worst = {}
        mixed = {}    # circuits with a connector below that may load phases unequally
        for c in tree.connectors:
            loads = [0, 0, 0]
            for p in c.wiring:
                loads[p] = c.max_da
            spec = c.circuit
            while spec is not None:
                w = worst.get(spec.id)
                if w is None:
                    w = worst[spec.id] = [0, 0, 0]
                for p in PHASES:
                    w[p] += loads[p]
                if c.phases != 3 or c.can_switch_phases:
                    mixed[spec.id] = True
                spec = spec.parent
        for cid in tree.circuits:
            spec = tree.circuits[cid]
            if spec.parent is None:
                continue
            w = worst.get(spec.id, [0, 0, 0])
            lim = spec.max_da[0]
            if cid not in mixed and lim is not None and lim == spec.max_da[1] == spec.max_da[2]:
                # Only 3-phase connectors below and one limit on all phases: the
                # three phase constraints are the same one. Keep one, passed once.
                if lim - spec.margin_da < w[0]:
                    self._triple_k[cid] = len(self.cap)
                    self.cap.append(lim - spec.margin_da)
                    self.label.append((cid, "3p"))
            else:
                self._add_phases(cid, spec, w)
            if spec.max_power_w is not None:
                lim = spec.max_power_w * 10 // self.voltage_v - 3 * spec.margin_da
                if lim < w[0] + w[1] + w[2]:
                    self._sum_k[cid] = len(self.cap)
                    self.cap.append(lim)
                    self.label.append((cid, "power"))

    def _add_phases(self, cid, spec, w):
        for p in PHASES:
            lim = spec.max_da[p]
            if lim is not None and lim - spec.margin_da < w[p]:
                self._phase_k[(cid, p)] = len(self.cap)
                self.cap.append(lim - spec.margin_da)
                self.label.append((cid, p))

    def _add_root_bound(self, tree):
        # The most the connectors can load the root with, given every limit below
        # it, plus one deciamp per connector and phase: when the root's capacity
        # of a cycle is at least that, it can neither refuse a minimum nor fill
        # up, not even to a rounding rest, so leaving it out of every path gives
        # the same result for less work (allocation.share does).
        load = {}
        total = {}
        for cid in tree.circuits:
            load[cid] = [0, 0, 0]
            total[cid] = 0
        count = [0, 0, 0]
        for c in self.specs:
            w = load[c.circuit.id]
            for p in c.wiring:
                w[p] += c.max_da
                count[p] += 1
            total[c.circuit.id] += c.max_da * c.phases
        # Children before parents (MicroPython's dicts keep no insertion order).
        deepest_first = []
        for cid in tree.circuits:
            depth = 0
            spec = tree.circuits[cid]
            while spec.parent is not None:
                depth += 1
                spec = spec.parent
            deepest_first.append((-depth, cid))
        deepest_first.sort(key=lambda t: t[0])
        for _, cid in deepest_first:
            spec = tree.circuits[cid]
            if spec.parent is None:
                continue
            w = load[cid]
            t = total[cid]
            for p in PHASES:
                lim = spec.max_da[p]
                if lim is not None and lim - spec.margin_da < w[p]:
                    w[p] = lim - spec.margin_da if lim > spec.margin_da else 0
            if spec.max_power_w is not None:
                lim = spec.max_power_w * 10 // self.voltage_v - 3 * spec.margin_da
                if lim < t:
                    t = lim if lim > 0 else 0
            if w[0] + w[1] + w[2] < t:
                t = w[0] + w[1] + w[2]
            up_w = load[spec.parent.id]
            for p in PHASES:
                up_w[p] += w[p] if w[p] < t else t
            total[spec.parent.id] += t
        r = load[self.root.id]
        self.root_bound = [r[p] + count[p] for p in PHASES]
        self.root_bound_sum = total[self.root.id] + count[0] + count[1] + count[2]
        root_ks = set(self.root_phase)
        if self.root_sum is not None:
            root_ks.add(self.root_sum)
        self.path_below_root = []
        for full, one in self.path:
            f = tuple(k for k in full if k not in root_ks)
            o = f if one is full else tuple(k for k in one if k not in root_ks)
            self.path_below_root.append((f, o))
        self.has_sums_below_root = len(self._sum_k) > (0 if self.root_sum is None else 1)

    def paths_for(self, caps, extra_da=0):
        """(paths, whether a path may name a constraint more than once) to use with
        the capacities ``caps`` of a cycle: without the root's constraints when the
        root cannot bind (see _add_root_bound). ``extra_da``: the most any admission
        asks above a minimum (the phase-up margin)."""
        root_phase = self.root_phase
        bound = self.root_bound
        if caps[root_phase[0]] >= bound[0] + extra_da and caps[root_phase[1]] >= bound[1] + extra_da \
                and caps[root_phase[2]] >= bound[2] + extra_da \
                and (self.root_sum is None or caps[self.root_sum] >= self.root_bound_sum + 3 * extra_da):
            return self.path_below_root, self.has_sums_below_root
        return self.path, self.has_sums

    def _path_for(self, c, site_phases):
        # Root first: when the site is full, the root is where most checks stop.
        chain = []
        spec = c.circuit
        while spec is not None:
            chain.append(spec.id)
            spec = spec.parent
        chain.reverse()
        path = []
        for cid in chain:
            k = self._triple_k.get(cid)
            if k is not None:
                path.append(k)
            for p in site_phases:
                k = self._phase_k.get((cid, p))
                if k is not None:
                    path.append(k)
            k = self._sum_k.get(cid)
            if k is not None:
                for _ in site_phases:
                    path.append(k)
        return tuple(path)

    def phases_of(self, i, mode):
        c = self.specs[i]
        return 1 if mode == ONE else c.phases


def circuits_from_site(site, external_limit_da=None, voltage_v=DEFAULT_VOLTAGE_V):
    """The tree of a topology.Site: grid -> charging groups -> stations -> connectors.

    ``external_limit_da`` caps the grid on every phase (a static cap; a cap that
    expires is passed to allocate() as ``site_limit`` instead). The grid's
    safety margin is applied by the allocation, so it is kept on the root.
    """
    grid_da = site.grid_max_da
    if external_limit_da is not None:
        _need_int(external_limit_da, "external_limit_da", 0)
        grid_da = min(grid_da, external_limit_da)
    tree = CircuitTree(voltage_v)
    root_id = "grid"
    tree.add_circuit(root_id, None, grid_da, site.grid_max_power_w, site.margin_da)
    for g in site.charging_groups:
        gid = "group:" + g.id
        tree.add_circuit(gid, root_id, g.max_da)
        for s in g.stations:
            sid = "station:" + s.id
            tree.add_circuit(sid, gid, s.max_da)
            for c in s.connectors:
                tree.add_connector((s.id, c.id), sid, c.phases, c.wiring, c.min_da, c.max_da,
                                   c.can_switch_phases)
    return tree


def _phase_limits(max_da, field):
    if max_da is None:
        return (None, None, None)
    if isinstance(max_da, int) and not isinstance(max_da, bool):
        _need_int(max_da, field, 0)
        return (max_da, max_da, max_da)
    if isinstance(max_da, (list, tuple)) and len(max_da) == 3:
        for p in PHASES:
            if max_da[p] is not None:
                _need_int(max_da[p], "%s[%d]" % (field, p), 0)
        return tuple(max_da)
    raise ValidationError(field, max_da, "must be deciamps: one whole number or a list of 3 per site phase")


def _need_int(value, field, lo):
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be a whole number")
    if value < lo or value > _BIG:
        raise ValidationError(field, value, "must be from %d to %d" % (lo, _BIG))
    return value
