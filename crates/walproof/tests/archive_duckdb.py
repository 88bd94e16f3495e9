"""Reads a walproof archive with DuckDB — an engine walproof did not write — and folds each
table's changes, in (__lsn, __ordinal) order, into the table's rows after the last one.

usage: archive_duckdb.py <archive root> <prefix> <schema.table>=<key columns|-> ...

A table with key columns is folded by key (an update's __before names the old key, unchanged
columns keep the previous version's value); one without (`-`, REPLICA IDENTITY FULL) as a
multiset of whole rows. Prints {"schema.table": [row, ...]} as JSON, rows sorted, each value
as Postgres prints it (DuckDB's text of the typed value; lists as Postgres array literals).
"""

import json
import sys

import duckdb


def pg_array(items):
    def element(item):
        if item is None:
            return "NULL"
        text = str(item)
        if text == "" or text.upper() == "NULL" or any(c in text for c in ' ,{}"\\'):
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text

    return "{" + ",".join(element(item) for item in items) + "}"


def fold(con, root, prefix, table, keys):
    files = f"{root}/{prefix}/{table}/*/*.parquet"
    rel = con.sql(
        f"SELECT * FROM read_parquet('{files}', union_by_name = true) ORDER BY __lsn, __ordinal"
    )
    columns = [c for c in rel.columns if not c.startswith("__")]
    types = dict(zip(rel.columns, rel.types))

    def as_text(expr, name):
        if str(types[name]).endswith("[]"):
            return expr
        return f"CAST({expr} AS VARCHAR)"

    values = [as_text(f'"{c}"', c) for c in columns]
    before_columns = keys if keys else columns
    before = [as_text(f'__before."{c}"', c) for c in before_columns]
    query = (
        f"SELECT __op, __unchanged, __before IS NOT NULL, {', '.join(values + before)} "
        f"FROM read_parquet('{files}', union_by_name = true) ORDER BY __lsn, __ordinal"
    )
    key_at = [columns.index(k) for k in keys]
    state = {}
    multiset = []
    for record in con.sql(query).fetchall():
        op, unchanged, has_before = record[0], record[1] or [], record[2]
        row = [pg_array(v) if isinstance(v, list) else v for v in record[3 : 3 + len(columns)]]
        old = [pg_array(v) if isinstance(v, list) else v for v in record[3 + len(columns) :]]
        if keys:
            key = tuple(row[i] for i in key_at)
            if op == "t":
                state.clear()
            elif op == "d":
                state.pop(key, None)
            elif op in ("c", "r"):
                state[key] = row
            elif op == "u":
                old_key = tuple(old) if has_before else key
                previous = state.pop(old_key, None)
                for name in unchanged:
                    row[columns.index(name)] = previous[columns.index(name)]
                state[key] = row
        else:
            if op == "t":
                multiset.clear()
            elif op == "d":
                multiset.remove(row)
            elif op in ("c", "r"):
                multiset.append(row)
            elif op == "u":
                multiset.remove(old if has_before else row)
                multiset.append(row)
    rows = list(state.values()) if keys else multiset
    return sorted(rows, key=lambda r: [("" if v is None else v) for v in r])


def main():
    root, prefix, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for spec in specs:
        table, keys = spec.split("=")
        out[table] = fold(con, root, prefix, table, [] if keys == "-" else keys.split(","))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
