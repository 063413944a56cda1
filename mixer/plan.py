"""Token targets per source: exact integers, epochs, and feasibility.

The stream is made of whole rows of `seq_len` tokens, so the total is `n_rows = total_tokens //
seq_len` rows. Each source's share (category weight x weight within the category) of `n_rows` is
rounded by the largest-remainder method (ties to the earlier source), so the integer row targets add
up exactly to `n_rows` and each source's target is `rows x seq_len` tokens.

A source whose target exceeds its available tokens (documents + one end-of-text each, after its
filter, the held-out split and down-sampling) is repeated in reshuffled passes; it needs
`target / available` epochs. Above the source's `max_epochs` the plan is infeasible: the error names
each such source, the epochs it would need and the largest total the spec can reach; with
`on_infeasible: rescale` the total is reduced to that largest feasible total instead.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction


class InfeasibleMix(ValueError):
    """The spec asks some source for more epochs than its cap allows."""

    def __init__(self, message: str, largest_feasible_tokens: int, needs: dict):
        super().__init__(message)
        self.largest_feasible_tokens = largest_feasible_tokens
        self.needs = needs


@dataclass
class SourcePlan:
    name: str
    category: str
    share: float
    target_rows: int
    target_tokens: int
    available_tokens: int
    available_documents: int
    max_epochs: float
    epochs: float            # target_tokens / available_tokens
    passes: int              # reshuffled passes started (ceil(epochs))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    seq_len: int
    n_rows: int
    total_tokens: int
    requested_tokens: int
    rescaled: bool
    sources: list[SourcePlan]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = [s.to_dict() for s in self.sources]
        return d


def apportion(total: int, shares: list[Fraction]) -> list[int]:
    """Integers proportional to `shares` that add up to `total` (largest remainder; ties by index)."""
    if total < 0:
        raise ValueError("total must be >= 0")
    s = sum(shares)
    if s <= 0:
        raise ValueError("shares sum to 0")
    exact = [Fraction(total) * Fraction(x) / s for x in shares]
    base = [math.floor(e) for e in exact]
    left = total - sum(base)
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return base


def _cap_rows(available: int, max_epochs: float, seq_len: int) -> int:
    """Most rows a source may fill: floor(max_epochs x available / seq_len)."""
    return math.floor(Fraction(str(max_epochs)) * available / seq_len)


def largest_feasible_rows(shares: list[Fraction], caps: list[int]) -> int:
    """The largest row total whose apportionment keeps every source within its cap."""
    bounds = [math.floor((c + 1) / sh) for sh, c in zip(shares, caps) if sh > 0]
    n = min(bounds) if bounds else 0
    while n > 0 and any(r > c for r, c in zip(apportion(n, shares), caps)):
        n -= 1
    return n


def make_plan(spec: dict, shares: list[Fraction], available_tokens: list[int],
              available_docs: list[int]) -> Plan:
    """Targets, epochs and passes per source; raises InfeasibleMix beyond an epoch cap."""
    L = spec["seq_len"]
    requested = spec["total_tokens"]
    n_rows = requested // L
    caps = [_cap_rows(a, x["max_epochs"], L) for a, x in zip(available_tokens, spec["sources"])]
    rows = apportion(n_rows, shares)
    bad = [i for i, (r, c) in enumerate(zip(rows, caps)) if r > c]
    rescaled = False
    if bad:
        feasible = largest_feasible_rows(shares, caps)
        needs = {}
        lines = []
        for i in bad:
            x = spec["sources"][i]
            tgt = rows[i] * L
            a = available_tokens[i]
            need = (tgt / a) if a else math.inf
            needs[x["name"]] = need
            lines.append(
                f"  source {x['name']!r} (category {x['category']}): target {tgt:,} tokens, "
                f"{a:,} available ({available_docs[i]:,} documents) -> needs "
                + (f"{need:.2f} epochs" if a else "documents (it has none)")
                + f", max_epochs is {x['max_epochs']:g}")
        if spec.get("on_infeasible") == "rescale" and feasible > 0:
            n_rows, rows, rescaled = feasible, apportion(feasible, shares), True
        else:
            raise InfeasibleMix(
                f"mix {spec.get('stage')!r} is infeasible at total_tokens={requested:,} "
                f"(seq_len {L}):\n" + "\n".join(lines) + "\n"
                f"  largest feasible total_tokens: {feasible * L:,} ({feasible:,} rows). "
                "Lower total_tokens, raise max_epochs of the sources above, add data, or set "
                "on_infeasible: rescale.", feasible * L, needs)
    out = []
    for i, x in enumerate(spec["sources"]):
        tgt = rows[i] * L
        a = available_tokens[i]
        ep = tgt / a if a else 0.0
        out.append(SourcePlan(x["name"], x["category"], float(shares[i]), rows[i], tgt, a,
                              available_docs[i], x["max_epochs"], ep,
                              -(-tgt // a) if a else 0))
    return Plan(L, n_rows, n_rows * L, requested, rescaled, out)
