#!/usr/bin/env python3
"""Rebuild tables from walproof's Debezium topics with a client that is not walproof's.

Consumes `<prefix>.<schema>.<table>` and `<prefix>.transaction` with the PyPI confluent-kafka
client and applies the change events in source order (source.lsn, transaction.total_order), using
nothing but the envelopes: op, before, after, the key. Prints {"schema.table": [rows...]} as JSON,
rows sorted, once it has seen the END of the transaction at commit LSN >= TARGET and the topics
have gone quiet. Delivery is at-least-once, so repeats are dropped by (source.lsn, total_order).

Usage: debezium_rebuild.py BROKERS PREFIX TARGET_COMMIT_LSN
"""
import collections
import json
import re
import sys
import time

from confluent_kafka import Consumer


def payload(raw):
    value = json.loads(raw)
    return value["payload"] if isinstance(value, dict) and "schema" in value and "payload" in value else value


def row_fields(raw):
    """The row struct's field names from the envelope's schema (None without schemas)."""
    value = json.loads(raw)
    if not (isinstance(value, dict) and "schema" in value):
        return None
    for field in value["schema"].get("fields", []):
        if field.get("field") in ("after", "before"):
            return [f["field"] for f in field.get("fields", [])]
    return None


def lsn_of(text):
    text = str(text)
    if "/" in text:
        hi, lo = text.split("/")
        return (int(hi, 16) << 32) | int(lo, 16)
    return int(text)


def main():
    brokers, prefix, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"outside-rebuild-{time.time()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    consumer.subscribe(["^" + re.escape(prefix) + r"\.public\..*", prefix + ".transaction"])
    events, done, quiet_since, started = [], False, time.time(), time.time()
    seen, repeats = set(), 0
    while True:
        message = consumer.poll(0.5)
        if message is None:
            if done and time.time() - quiet_since > 3:
                break
            if time.time() - started > 180:
                sys.exit("timed out waiting for the END of the last transaction")
            continue
        if message.error():
            continue
        quiet_since = time.time()
        if message.topic() == prefix + ".transaction":
            record = payload(message.value())
            if record["status"] == "END" and lsn_of(record["id"].split(":", 1)[1]) >= target:
                done = True
            continue
        if message.value() is None:
            continue  # a tombstone: compaction's business, not state
        event = payload(message.value())
        key = payload(message.key()) if message.key() else None
        order = (event.get("transaction") or {}).get("total_order", 0)
        identity = (int(event["source"]["lsn"]), order)
        if identity in seen:
            # At-least-once: a rebalance (a new topic matching the pattern) or a publisher
            # restart repeats events; (source.lsn, total_order) names each one.
            repeats += 1
            continue
        seen.add(identity)
        events.append((identity[0], order, event, key, row_fields(message.value())))
    consumer.close()
    ops = collections.Counter(f'{e[2]["source"]["table"]}:{e[2]["op"]}' for e in events)
    print(f"{len(events)} events {dict(sorted(ops.items()))}, {repeats} repeats dropped", file=sys.stderr)

    tables = {}
    for _, _, event, key, fields in sorted(events, key=lambda e: (e[0], e[1])):
        name = f'{event["source"]["schema"]}.{event["source"]["table"]}'
        rows = tables.setdefault(name, {"keyed": {}, "multiset": [], "fields": fields})
        if fields is not None and fields != rows["fields"]:
            # The table's shape changed (DDL): rows held take the new shape, a dropped column
            # goes, a new one is null until an event carries it.
            reshape = lambda row: {f: row.get(f) for f in fields}
            rows["keyed"] = {k: reshape(r) for k, r in rows["keyed"].items()}
            rows["multiset"] = [reshape(r) for r in rows["multiset"]]
            rows["fields"] = fields
        op = event["op"]
        if op == "t":
            rows["keyed"].clear()
            rows["multiset"].clear()
        elif key is None:
            if op in ("c", "r"):
                rows["multiset"].append(event["after"])
            elif op == "u":
                rows["multiset"].remove(event["before"])
                rows["multiset"].append(event["after"])
            elif op == "d":
                rows["multiset"].remove(event["before"])
        else:
            identity = json.dumps(key, sort_keys=True)
            if op in ("c", "r", "u"):
                rows["keyed"][identity] = event["after"]
            elif op == "d":
                rows["keyed"].pop(identity, None)
    out = {
        name: sorted((json.dumps(r, sort_keys=True) for r in list(rows["keyed"].values()) + rows["multiset"]))
        for name, rows in tables.items()
    }
    print(json.dumps({name: rows for name, rows in out.items() if rows}, sort_keys=True))


if __name__ == "__main__":
    main()
