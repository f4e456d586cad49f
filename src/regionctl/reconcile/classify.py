"""Turn captured changes into the report's row changes: keys, before-images, and conflicts with the new writer.

Every method (slot, WAL, keyed diff) hands over transactions of decoded-style changes; this module decides the
rest the same way for all of them:

- the key of each change (primary key; the old key too when an update moved it);
- per key, the chain of lost changes in commit order, each with the state it expects before and leaves after;
- the before-image of updates and deletes: decoded when the table logs full old rows, else the previous lost
  change's after-image, else the new writer's row when it still holds the very version the old writer changed
  (shared history, see ``versions``);
- conflicts: keys whose first lost change expects a state the new writer no longer has (changed, deleted or
  inserted there since the failover).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from regionctl.globaldb.lsn import format_lsn
from regionctl.reconcile.model import DELETE, INSERT, UPDATE, Conflict, Key, LostTransaction, Row, RowChange, TableMeta
from regionctl.reconcile.testdecoding import DecodedChange
from regionctl.reconcile.versions import RowSource, Version, is_shared


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
State = Row | None | _Unknown  # a row's values, None when absent, UNKNOWN when not recoverable


@dataclass(slots=True)  # one per lost transaction (see DecodedChange)
class Captured:
    """A lost transaction as a method captured it, before classification."""

    id: str
    commit_lsn: int | None
    commit_time: str | None
    xid: int | None
    changes: tuple[DecodedChange, ...]
    note: str | None = None


@dataclass(slots=True)
class Step:
    tx: int
    change: int
    kind: str
    expects_present: bool
    after: State


@dataclass(slots=True)
class Chain:
    table: str
    key: Key
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Classified:
    transactions: tuple[LostTransaction, ...]
    conflicts: tuple[Conflict, ...]


def transaction_id(timeline: int | None, commit_lsn: int) -> str:
    """Where the transaction's commit ended on the old timeline: unique, unlike its xid."""
    return f"tl{timeline or 0}:{format_lsn(commit_lsn)}"


def key_of(values: Row | None, columns: tuple[str, ...]) -> Key | None:
    if values is None or not columns:
        return None
    try:
        return tuple([values[c] for c in columns])
    except KeyError:
        return None


def _keys(change: DecodedChange, meta: TableMeta | None) -> tuple[Key | None, Key | None]:
    """(key, old key): the old key only when an update changed the primary key."""
    columns = meta.key if meta else ()
    if change.kind == DELETE:
        return key_of(change.old, columns), None
    key = key_of(change.new, columns)
    old_key = key_of(change.old, columns) if change.kind == UPDATE else None
    return key, (old_key if old_key is not None and old_key != key else None)


def all_keys(captured: Sequence[Captured], tables: dict[str, TableMeta]) -> list[list[tuple[Key | None, Key | None]]]:
    """(key, old key) of every change, computed once."""
    return [[_keys(change, tables.get(change.table)) for change in tx.changes] for tx in captured]


def build_chains(captured: Sequence[Captured], tables: dict[str, TableMeta],
                 keys: list[list[tuple[Key | None, Key | None]]] | None = None) -> dict[tuple[str, Key], Chain]:
    """Per (table, key), the lost changes in commit order with the state each leaves behind."""
    steps: dict[tuple[str, Key], list[Step]] = {}
    keys = keys if keys is not None else all_keys(captured, tables)
    for t, tx in enumerate(captured):
        tx_keys = keys[t]
        for c, change in enumerate(tx.changes):
            key, old_key = tx_keys[c]
            if key is None or change.action != "apply":
                continue  # unkeyed, or carried by a later lost change: not part of any chain
            table, kind = change.table, change.kind
            if kind == INSERT:
                s = Step(t, c, INSERT, False, change.new or {})
            elif kind == DELETE:
                s = Step(t, c, DELETE, True, None)
            elif old_key is not None:  # the key moved: the old key disappears, the new one appears
                steps.setdefault((table, old_key), []).append(Step(t, c, UPDATE, True, None))
                s = Step(t, c, UPDATE, False, change.new or {})
            else:
                s = Step(t, c, UPDATE, True, change.new or {})
            found = steps.get((table, key))
            if found is None:
                steps[(table, key)] = [s]
            else:
                found.append(s)
    return {(table, key): Chain(table, key, chain) for (table, key), chain in steps.items()}


def judge_chain(chain: Chain, new: Version | None, shared: bool) -> tuple[str, str] | None:
    """Does the new writer still hold what the first lost change expects? (new_writer state, reason) if not."""
    first = chain.steps[0]
    if not first.expects_present:
        if new is None:
            return None
        state = "inserted" if not shared else "present"
        return state, (f"a lost {first.kind} creates this key, but the new writer "
                       + ("inserted it since the failover" if not shared else "already holds it"))
    if new is None:
        return "deleted", f"a lost {first.kind} changes this row, but the new writer deleted it since the failover"
    if not shared:
        return "changed", f"a lost {first.kind} changes this row, but the new writer changed it since the failover"
    return None


def _settled(chain: Chain, new_rows: dict[tuple[str, Key], Version]) -> bool:
    """A key the lost history only created, once, that the new writer lacks (most lost rows): nothing to judge,
    and no before-image to find."""
    return len(chain.steps) == 1 and not chain.steps[0].expects_present and (chain.table, chain.key) not in new_rows


def classify(captured: Sequence[Captured], tables: dict[str, TableMeta], new_side: RowSource,
             copy_side: RowSource) -> Classified:
    """Row changes are put together first and their before-images filled in once the chains are judged (a
    lookup thread overlapping the two was measured slower: the GIL hand-overs cost more than the wait saved)."""
    keys = all_keys(captured, tables)
    chains = build_chains(captured, tables, keys)
    new_rows = _lookup(chains, tables, new_side)
    drafts = [_transaction(tx, tables, keys[t]) for t, tx in enumerate(captured)]
    shared = {k: is_shared(v, copy_side) for k, v in new_rows.items()}
    open_chains = [chain for chain in chains.values() if not _settled(chain, new_rows)]
    before = _before_images(open_chains, new_rows, shared)
    conflicts = []
    for chain in open_chains:
        table, key = chain.table, chain.key
        verdict = judge_chain(chain, new_rows.get((table, key)), shared.get((table, key), False))
        if verdict is None:
            continue
        columns = tables[table].key
        new = new_rows.get((table, key))
        conflicts.append(Conflict(
            table=table, key=dict(zip(columns, key, strict=True)),
            transactions=tuple(dict.fromkeys(captured[s.tx].id for s in chain.steps)),
            lost_kinds=tuple(s.kind for s in chain.steps), new_writer=verdict[0],
            new_row=None if new is None else new.values, reason=verdict[1],
        ))
    for t, tx in enumerate(captured):
        for c, change in enumerate(tx.changes):
            if change.kind != INSERT:
                row = drafts[t].changes[c]
                row.old, row.old_source = _old_image(change, tables.get(change.table),
                                                     before.get((t, c), (UNKNOWN, None)))
    return Classified(tuple(drafts), tuple(conflicts))


def _lookup(chains: dict[tuple[str, Key], Chain], tables: dict[str, TableMeta],
            new_side: RowSource) -> dict[tuple[str, Key], Version]:
    by_table: dict[str, list[Key]] = {}
    for table, key in chains:
        by_table.setdefault(table, []).append(key)
    found: dict[tuple[str, Key], Version] = {}
    for table, keys in by_table.items():
        for key, version in new_side.by_keys(table, tables[table].key, keys).items():
            found[(table, key)] = version
    return found


def _before_images(chains: Sequence[Chain], new_rows: dict[tuple[str, Key], Version],
                   shared: dict[tuple[str, Key], bool]) -> dict[tuple[int, int], tuple[State, str | None]]:
    """(tx, change) -> (state before it, where that state comes from)."""
    before: dict[tuple[int, int], tuple[State, str | None]] = {}
    for chain in chains:
        new = new_rows.get((chain.table, chain.key))
        state: State
        source: str | None
        if new is not None and shared.get((chain.table, chain.key)):
            state, source = dict(new.values), "new_writer"
        elif new is None and not chain.steps[0].expects_present:
            state, source = None, None
        else:
            state, source = UNKNOWN, None
        for s in chain.steps:
            if s.expects_present or (s.tx, s.change) not in before:
                before[(s.tx, s.change)] = (state, source)
            if isinstance(s.after, dict) and isinstance(state, dict):
                s.after = {**state, **s.after}  # columns decoding left out (unchanged TOAST) keep their value
            state, source = s.after, "lost_transaction"
    return before


def _transaction(tx: Captured, tables: dict[str, TableMeta], keys: list[tuple[Key | None, Key | None]]
                 ) -> LostTransaction:
    """The transaction's row changes, before-images still to fill in. Runs once per lost row change: a plain
    insert (most of them) takes the short branch."""
    changes = []
    for c, change in enumerate(tx.changes):
        meta = tables.get(change.table)
        columns = meta.key if meta else ()
        key, old_key = keys[c]
        kind, note, action = change.kind, change.note, change.action
        if kind == INSERT and key is not None:
            changes.append(RowChange(change.table, kind, dict(zip(columns, key, strict=True)), change.new, None,
                                     None, None, change.unchanged, note, action))
            continue
        if kind == "truncate":
            action = "manual"
        elif key is None and action == "apply":
            action = "manual"
            note = note or ("table has no primary key" if meta and not meta.key else "key not recoverable")
        key_row = None if key is None else dict(zip(columns, key, strict=True))
        old_key_row = None if old_key is None else dict(zip(columns, old_key, strict=True))
        changes.append(RowChange(change.table, kind, key_row, change.new, None, old_key_row, None,
                                 change.unchanged, note, action))
    return LostTransaction(
        id=tx.id, commit_lsn=None if tx.commit_lsn is None else format_lsn(tx.commit_lsn),
        commit_time=tx.commit_time, xid=tx.xid, tables=tuple(dict.fromkeys([ch.table for ch in tx.changes])),
        changes=tuple(changes), note=tx.note,
    )


def _old_image(change: DecodedChange, meta: TableMeta | None, before: tuple[State, str | None]
               ) -> tuple[Row | None, str | None]:
    if change.kind == INSERT:
        return None, None
    full = meta is not None and change.old is not None and set(meta.columns) <= set(change.old)
    if full or (change.old_full and change.old is not None):
        return change.old, "decoded"
    state, source = before
    if isinstance(state, dict):
        return state, source
    return change.old, ("decoded_key" if change.old else None)
