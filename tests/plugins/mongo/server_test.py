#!/usr/bin/python3
"""Keeps the tests' MongoDB wire-protocol server (mongo_server.py) honest: with pymongo
(Debian's python3-pymongo) as an independent client, and raw OP_MSG where pymongo would
refuse before sending, it must reject what MongoDB rejects and answer with MongoDB's codes:

- a duplicate key on a unique index (11000), on insert, upsert and createIndexes;
- a document over 16 MiB (2 on insert, 17419 on update), while one just under is stored;
- an unknown command (59), a namespace that does not exist (26), an unknown cursor (43);
- find's batchSize, limit, singleBatch, sort and projection; getMore and killCursors;
  findAndModify, aggregate ($match, $group), count, listIndexes, drop;
- equality lookups through the server's own hash indexes answer as mongomock's scan does.

    server_test.py PATH/TO/mongo_server.py
"""

import os
import signal
import socket
import struct
import subprocess
import sys

import bson
import pymongo
from pymongo.errors import DuplicateKeyError, OperationFailure

MAX = 16 * 1024 * 1024


def raw_command(port, db, body):
    """One OP_MSG, bypassing pymongo's own size checks; the reply's body."""
    body = dict(body, **{"$db": db})
    payload = struct.pack("<IB", 0, 0) + bson.encode(body)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload)
        header = s.recv(16, socket.MSG_WAITALL)
        length = struct.unpack("<i", header[:4])[0]
        data = b""
        while len(data) < length - 16:
            data += s.recv(length - 16 - len(data))
    return bson.decode(data[5:])


def main():
    server = subprocess.Popen(["/usr/bin/python3", sys.argv[1]], stdout=subprocess.PIPE)
    failures = []

    def check(ok, what):
        print("%s: %s" % ("ok" if ok else "FAIL", what))
        if not ok:
            failures.append(what)

    def code_of(call):
        try:
            call()
        except OperationFailure as error:
            return error.code
        return None

    try:
        port = int(server.stdout.readline())
        client = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000)
        db = client.honesty
        c = db.items
        c.create_index("k", unique=True)
        c.insert_one({"k": "a", "n": 1})
        try:
            c.insert_one({"k": "a", "n": 2})
            check(False, "a duplicate key on a unique index is refused")
        except DuplicateKeyError as error:
            check(error.code == 11000, "a duplicate key on a unique index is refused (11000)")
        c.insert_one({"k": "b", "n": 2})
        try:
            c.update_one({"k": "zz"}, {"$set": {"k": "b"}}, upsert=True)
            check(False, "an upsert onto a taken unique key is refused")
        except DuplicateKeyError as error:
            check(error.code == 11000, "an upsert onto a taken unique key is refused (11000)")
        db.dups.insert_many([{"k": 1}, {"k": 1}])
        check(code_of(lambda: db.dups.create_index("k", unique=True)) == 11000,
              "a unique index over duplicates is refused (11000)")
        check(c.count_documents({}) == 2, "refused writes left nothing behind")

        # Over 16 MiB: refused; just under: stored.
        big = {"_id": "big", "v": b"x" * (MAX + 1)}
        reply = raw_command(port, "honesty", {"insert": "items", "documents": [big]})
        errors = reply.get("writeErrors", [])
        check(reply.get("n") == 0 and errors and errors[0]["code"] == 2,
              "a document over 16 MiB is refused on insert: %r" % errors)
        reply = raw_command(port, "honesty", {"update": "items", "updates": [
            {"q": {"k": "a"}, "u": {"k": "a", "v": b"x" * (MAX + 1)}}]})
        errors = reply.get("writeErrors", [])
        check(errors and errors[0]["code"] == 17419, "... and as an update: %r" % errors)
        c.insert_one({"_id": "under", "v": b"x" * (MAX - 100)})
        check(len(c.find_one({"_id": "under"})["v"]) == MAX - 100, "a document just under 16 MiB is stored")
        c.delete_one({"_id": "under"})

        check(code_of(lambda: db.command("noSuchCommand")) == 59, "an unknown command is 59")
        check(code_of(lambda: db.command("drop", "missing")) == 26, "dropping a missing collection is 26")
        check(code_of(lambda: db.command("listIndexes", "missing")) == 26,
              "listIndexes of a missing collection is 26")
        check(code_of(lambda: db.command("getMore", bson.int64.Int64(424242), collection="items")) == 43,
              "getMore of an unknown cursor is 43")

        many = db.many
        many.insert_many([{"i": i, "even": i % 2 == 0} for i in range(250)])
        got = list(many.find({"i": {"$gt": 9, "$lte": 200}}, {"_id": 0, "i": 1}).sort("i", -1).batch_size(7))
        check([d["i"] for d in got] == list(range(200, 9, -1)) and all(list(d) == ["i"] for d in got),
              "find with $gt/$lte, sort, projection, batches of 7 (getMore)")
        check(len(list(many.find({"i": {"$in": [1, 2, 999]}}))) == 2, "$in")
        check(many.count_documents({"missing": {"$exists": True}}) == 0, "$exists")
        reply = db.command("find", "many", batchSize=5, singleBatch=True)
        check(len(reply["cursor"]["firstBatch"]) == 5 and reply["cursor"]["id"] == 0, "singleBatch")
        reply = db.command("find", "many", batchSize=5)
        cursor_id = reply["cursor"]["id"]
        killed = db.command("killCursors", "many", cursors=[cursor_id])
        check(killed["cursorsKilled"] == [cursor_id], "killCursors")
        check(code_of(lambda: db.command("getMore", cursor_id, collection="many")) == 43,
              "a killed cursor is gone (43)")
        check(len(list(many.find().limit(3))) == 3, "limit")
        doc = many.find_one_and_update({"i": 3}, {"$set": {"seen": True}},
                                       return_document=pymongo.ReturnDocument.AFTER)
        check(doc["seen"] is True, "findAndModify returns the new document")
        groups = list(many.aggregate([{"$match": {"i": {"$lt": 10}}},
                                      {"$group": {"_id": "$even", "n": {"$sum": 1}}}]))
        check(sorted((g["_id"], g["n"]) for g in groups) == [(False, 5), (True, 5)], "aggregate")
        check(db.command("count", "many")["n"] == 250, "count")
        names = [i["name"] for i in c.list_indexes()]
        check(names == ["_id_", "k_1"], "listIndexes: %r" % names)
        many.drop()
        check("many" not in db.list_collection_names(), "drop")
        # The server's hash indexes on equality lookups answer as a scan would: after
        # updates that move a document to another value, for array fields, in natural order.
        f = db.fields
        f.insert_many([{"_id": n, "a": "x", "n": n} for n in range(5)] + [{"_id": 9, "a": ["x", "y"]}])
        check([d["_id"] for d in f.find({"a": "x"})] == [0, 1, 2, 3, 4, 9], "equality, arrays, order")
        f.update_one({"_id": 2}, {"$set": {"a": "y"}})
        f.find_one_and_update({"_id": 3}, {"$set": {"a": "y"}})
        f.update_many({"a": "y"}, {"$set": {"b": 1}})
        check([d["_id"] for d in f.find({"a": "y"})] == [2, 3, 9], "a value moved by updates")
        check([d["_id"] for d in f.find({"a": "x"})] == [0, 1, 4, 9], "... and gone from the old")
        f.delete_many({"a": "x", "n": {"$lt": 2}})
        f.insert_one({"_id": 0, "a": "x"})
        check([d["_id"] for d in f.find({"a": "x"})] == [4, 9, 0], "deleted and inserted again")
        check(f.find_one({"_id": 4})["n"] == 4 and f.find_one({"_id": 7}) is None, "by _id")
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
