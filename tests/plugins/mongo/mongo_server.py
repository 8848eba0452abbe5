#!/usr/bin/python3
"""A small MongoDB wire-protocol server over mongomock, for curlcache's tests only.

No MongoDB server can be installed on Debian, so the tests of the mongodb and gridfs
plugins talk to this: libmongoc (or pymongo) connects to it as to a standalone mongod of
wire version 13 (MongoDB 5.0). mongomock (Debian's python3-mongomock) does the query and
update semantics; this file does the wire protocol and the command layer:

  - the legacy OP_QUERY handshake (isMaster / hello on admin.$cmd) answered with OP_REPLY;
  - OP_MSG (body and document-sequence sections, checksum flag, moreToCome) for hello, ping,
    buildInfo, endSessions, insert, update (upsert, operators or replacement), delete,
    find (filter, projection, sort, skip, limit, batchSize, singleBatch), getMore,
    killCursors, findAndModify, aggregate, count, createIndexes, listIndexes,
    listCollections, create, drop, dropDatabase;
  - the errors the driver acts on, with MongoDB's codes: duplicate key 11000, namespace not
    found 26, cursor not found 43, command not found 59, a document over 16 MiB (2 on
    insert, 17419 on update), bad value 2 / failed to parse 9.

Usage: mongo_server.py [--port N]   (0, the default, picks a free port on 127.0.0.1)
It prints the port on the first line of stdout, then serves until killed. Not for
production: one lock around the store, cursors held in memory, no authentication.
"""

import argparse
import datetime
import itertools
import random
import socket
import socketserver
import struct
import sys
import threading
import time

import bson
import mongomock
import mongomock.collection
import mongomock.store
from mongomock.filtering import filter_applies
from bson.int64 import Int64
from pymongo import ReturnDocument

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
MAX_BSON = 16 * 1024 * 1024
MAX_MESSAGE = 48000000
MAX_BATCH_BYTES = MAX_BSON  # a reply batch holds at most this much (and one document)

CODEC = bson.codec_options.CodecOptions(document_class=dict)


class CommandError(Exception):
    def __init__(self, code, name, message):
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


# mongomock finds documents by testing its filter against every document of a collection,
# and sweeps every TTL-indexed collection whole on each access: with the thousands of heads,
# files and chunks of a test that runs 4 processes x 1,000 operations, those scans were the
# server's time. Two shortcuts, neither changing what a command answers:
#   - a filter with an equality on a top-level field (a string, integer or ObjectId; `_id`,
#     `files_id` ...) is tested only against the documents that hold that value, found in a
#     hash index per collection and field, built on first use and kept by every insert; an
#     update may change a field in place, so updates drop their collection's indexes (built
#     again when next asked). Every candidate still goes through mongomock's filter.
#   - TTL deletion runs at most once a second per collection (MongoDB's own TTL monitor runs
#     once a minute; readers never rely on it).
INDEXABLE = (str, int, bson.ObjectId)
ODD = object()  # the documents whose field is an array, a document or another type


def index_key(value):
    if isinstance(value, bool) or not isinstance(value, INDEXABLE):
        return ODD
    return value


def extra(store):
    """Our additions to a collection's store: insertion numbers and field indexes."""
    if "_curlcache" not in store.__dict__:
        store._curlcache = {"order": {}, "next": 0, "indexes": {}}
    return store._curlcache


def field_index(store, field):
    indexes = extra(store)["indexes"]
    index = indexes.get(field)
    if index is None:
        index = {}
        for key, document in store._documents.items():
            if field in document:
                index.setdefault(index_key(document[field]), set()).add(key)
        indexes[field] = index
    return index


def drop_field_indexes(collection):
    extra(collection._store)["indexes"].clear()


original_setitem = mongomock.store.CollectionStore.__setitem__


def indexed_setitem(self, key, document):
    more = extra(self)
    if key not in self._documents:  # a new key goes last in the OrderedDict, as in a scan
        more["order"][key] = more["next"]
        more["next"] += 1
    original_setitem(self, key, document)
    for field, index in more["indexes"].items():
        if field in document:
            index.setdefault(index_key(document[field]), set()).add(key)


original_expire = mongomock.store.CollectionStore._remove_expired_documents


def throttled_expire(self):
    now = time.monotonic()
    if now - self.__dict__.get("_curlcache_swept", -2.0) >= 1.0:
        self._curlcache_swept = now
        original_expire(self)


original_iter_documents = mongomock.collection.Collection._iter_documents


def indexed_iter_documents(self, filter):
    field = next((f for f, v in (filter or {}).items() if not f.startswith("$") and "." not in f
                  and not isinstance(v, bool) and isinstance(v, INDEXABLE)), None)
    if field is None:
        return original_iter_documents(self, filter)
    store = self._store
    store._remove_expired_documents()
    if field == "_id":  # the documents are keyed by _id already (and _id never changes)
        keys = [filter["_id"]]
    else:
        index = field_index(store, field)
        keys = list(index.get(filter[field], ())) + list(index.get(ODD, ()))
    order = extra(store)["order"]
    with store._rwlock.reader():
        documents = store._documents
        keys = sorted((k for k in keys if k in documents), key=lambda k: order.get(k, -1))
        candidates = [documents[k] for k in keys]
    return (document for document in candidates if filter_applies(filter, document))


mongomock.store.CollectionStore.__setitem__ = indexed_setitem
mongomock.store.CollectionStore._remove_expired_documents = throttled_expire
mongomock.collection.Collection._iter_documents = indexed_iter_documents


class Store:
    """mongomock behind one lock, and the open cursors."""

    def __init__(self):
        self.client = mongomock.MongoClient()
        self.lock = threading.RLock()
        self.cursors = {}  # id -> (namespace, remaining documents)
        self.ids = itertools.count(1)

    def collection(self, db, name):
        return self.client[db][name]

    def exists(self, db, name):
        return name in self.client[db].list_collection_names()


def too_large(document):
    return len(bson.encode(document)) > MAX_BSON


def write_error(index, error):
    if isinstance(error, mongomock.DuplicateKeyError):
        return {"index": index, "code": 11000, "errmsg": "E11000 duplicate key error: " + str(error)}
    if isinstance(error, CommandError):
        return {"index": index, "code": error.code, "errmsg": error.message}
    return {"index": index, "code": 2, "errmsg": str(error)}


def is_operator_update(update):
    return isinstance(update, dict) and update and next(iter(update)).startswith("$")


def take_batch(documents, size):
    """The first batch: at most `size` documents (0 = up to 101) and MAX_BATCH_BYTES."""
    taken, total = 0, 0
    limit = min(size if size > 0 else 101, len(documents))
    while taken < limit:
        length = len(bson.encode(documents[taken]))
        if taken and total + length > MAX_BATCH_BYTES:
            break
        taken += 1
        total += length
    batch = documents[:taken]
    del documents[:taken]  # once, not one pop(0) per document
    return batch


def cursor_reply(store, namespace, documents, batch_size, single, first=True):
    batch = take_batch(documents, batch_size)
    cursor_id = 0
    if documents and not single:
        cursor_id = next(store.ids) * 1000 + random.randrange(1000)
        store.cursors[cursor_id] = (namespace, documents)
    key = "firstBatch" if first else "nextBatch"
    return {"cursor": {key: batch, "id": Int64(cursor_id), "ns": namespace}, "ok": 1.0}


def sort_spec(sort):
    return list(sort.items()) if sort else None


def run_find(store, db, body):
    name = body["find"]
    collection = store.collection(db, name)
    limit = int(body.get("limit", 0))
    single = bool(body.get("singleBatch", False)) or limit < 0
    limit = abs(limit)
    cursor = collection.find(body.get("filter", {}), body.get("projection"))
    if body.get("sort"):
        cursor = cursor.sort(sort_spec(body["sort"]))
    if body.get("skip"):
        cursor = cursor.skip(int(body["skip"]))
    if limit:
        cursor = cursor.limit(limit)
    documents = list(cursor)
    return cursor_reply(store, db + "." + name, documents, int(body.get("batchSize", 0)), single)


def run_get_more(store, db, body):
    cursor_id = int(body["getMore"])
    if cursor_id not in store.cursors:
        raise CommandError(43, "CursorNotFound", "cursor id %d not found" % cursor_id)
    namespace, documents = store.cursors.pop(cursor_id)
    batch = take_batch(documents, int(body.get("batchSize", 0)))
    if documents:
        store.cursors[cursor_id] = (namespace, documents)
    else:
        cursor_id = 0
    return {"cursor": {"nextBatch": batch, "id": Int64(cursor_id), "ns": namespace}, "ok": 1.0}


def run_kill_cursors(store, db, body):
    killed, missing = [], []
    for cursor_id in body.get("cursors", []):
        (killed if store.cursors.pop(int(cursor_id), None) is not None else missing).append(cursor_id)
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [],
            "cursorsUnknown": [], "ok": 1.0}


def run_insert(store, db, body):
    collection = store.collection(db, body["insert"])
    ordered = body.get("ordered", True)
    n, errors = 0, []
    for index, document in enumerate(body.get("documents", [])):
        try:
            if too_large(document):
                raise CommandError(2, "BadValue", "object to insert too large. size in bytes: %d,"
                                   " max size: %d" % (len(bson.encode(document)), MAX_BSON))
            collection.insert_one(document)
            n += 1
        except (mongomock.DuplicateKeyError, CommandError) as error:
            errors.append(write_error(index, error))
            if ordered:
                break
    reply = {"n": n, "ok": 1.0}
    if errors:
        reply["writeErrors"] = errors
    return reply


def run_update(store, db, body):
    collection = store.collection(db, body["update"])
    drop_field_indexes(collection)
    ordered = body.get("ordered", True)
    n = modified = 0
    upserted, errors = [], []
    for index, statement in enumerate(body.get("updates", [])):
        query, update = statement.get("q", {}), statement.get("u", {})
        upsert, multi = bool(statement.get("upsert")), bool(statement.get("multi"))
        try:
            if too_large(update):
                raise CommandError(17419, "Location17419", "Resulting document after update is"
                                   " larger than %d" % MAX_BSON)
            if is_operator_update(update):
                result = (collection.update_many if multi else collection.update_one)(
                    query, update, upsert=upsert)
            else:
                result = collection.replace_one(query, update, upsert=upsert)
            n += result.matched_count
            modified += result.modified_count
            if result.upserted_id is not None:
                n += 1
                upserted.append({"index": index, "_id": result.upserted_id})
        except (mongomock.DuplicateKeyError, CommandError) as error:
            errors.append(write_error(index, error))
            if ordered:
                break
    reply = {"n": n, "nModified": modified, "ok": 1.0}
    if upserted:
        reply["upserted"] = upserted
    if errors:
        reply["writeErrors"] = errors
    return reply


def run_delete(store, db, body):
    collection = store.collection(db, body["delete"])
    n = 0
    for statement in body.get("deletes", []):
        if int(statement.get("limit", 0)) == 1:
            n += collection.delete_one(statement.get("q", {})).deleted_count
        else:
            n += collection.delete_many(statement.get("q", {})).deleted_count
    return {"n": n, "ok": 1.0}


def run_find_and_modify(store, db, body):
    collection = store.collection(db, body["findAndModify"])
    drop_field_indexes(collection)
    query, sort = body.get("query", {}), sort_spec(body.get("sort"))
    fields = body.get("fields")
    after = bool(body.get("new"))
    upsert = bool(body.get("upsert"))
    if body.get("remove"):
        value = collection.find_one_and_delete(query, projection=fields, sort=sort)
        return {"lastErrorObject": {"n": 1 if value else 0}, "value": value, "ok": 1.0}
    update = body.get("update", {})
    if too_large(update):
        raise CommandError(17419, "Location17419", "Resulting document after update is larger"
                           " than %d" % MAX_BSON)
    before = collection.find_one(query, sort=sort, projection={"_id": 1})
    document = ReturnDocument.AFTER if after else ReturnDocument.BEFORE
    try:
        if is_operator_update(update):
            value = collection.find_one_and_update(query, update, projection=fields, sort=sort,
                                                   upsert=upsert, return_document=document)
        else:
            value = collection.find_one_and_replace(query, update, projection=fields, sort=sort,
                                                    upsert=upsert, return_document=document)
    except mongomock.DuplicateKeyError as error:
        raise CommandError(11000, "DuplicateKey", "E11000 duplicate key error: " + str(error))
    last = {"n": 1 if (before is not None or upsert) else 0, "updatedExisting": before is not None}
    if before is None and upsert:
        found = collection.find_one(query, sort=sort, projection={"_id": 1})
        if found is not None:
            last["upserted"] = found["_id"]
    return {"lastErrorObject": last, "value": value, "ok": 1.0}


def run_aggregate(store, db, body):
    name = body["aggregate"]
    documents = list(store.collection(db, name).aggregate(body.get("pipeline", [])))
    batch = int(body.get("cursor", {}).get("batchSize", 0))
    return cursor_reply(store, db + "." + name, documents, batch, False)


def run_count(store, db, body):
    collection = store.collection(db, body["count"])
    options = {k: int(body[k]) for k in ("limit", "skip") if body.get(k)}
    return {"n": collection.count_documents(body.get("query") or {}, **options), "ok": 1.0}


def run_create_indexes(store, db, body):
    name = body["createIndexes"]
    created = not store.exists(db, name)
    collection = store.collection(db, name)
    before = len(collection.index_information()) if not created else 1
    for index in body.get("indexes", []):
        if "key" not in index or "name" not in index:
            raise CommandError(9, "FailedToParse", "an index specification needs key and name")
        options = {k: v for k, v in index.items() if k not in ("key", "name", "v", "ns")}
        try:
            collection.create_index(list(index["key"].items()), name=index["name"], **options)
        except mongomock.DuplicateKeyError as error:
            raise CommandError(11000, "DuplicateKey", "E11000 duplicate key error: " + str(error))
    return {"createdCollectionAutomatically": created, "numIndexesBefore": before,
            "numIndexesAfter": len(collection.index_information()), "ok": 1.0}


def namespace_not_found(db, name):
    return CommandError(26, "NamespaceNotFound", "ns does not exist: %s.%s" % (db, name))


def run_list_indexes(store, db, body):
    name = body["listIndexes"]
    if not store.exists(db, name):
        raise namespace_not_found(db, name)
    documents = list(store.collection(db, name).list_indexes())
    batch = int(body.get("cursor", {}).get("batchSize", 0))
    return cursor_reply(store, db + "." + name, documents, batch, False)


def run_list_collections(store, db, body):
    names = store.client[db].list_collection_names()
    documents = [{"name": n, "type": "collection", "options": {}, "info": {"readOnly": False}}
                 for n in names]
    query = body.get("filter") or {}
    if "name" in query:
        documents = [d for d in documents if d["name"] == query["name"]]
    return cursor_reply(store, db + ".$cmd.listCollections", documents, 0, False)


def run_create(store, db, body):
    name = body["create"]
    if store.exists(db, name):
        raise CommandError(48, "NamespaceExists", "Collection %s.%s already exists." % (db, name))
    store.client[db].create_collection(name)
    return {"ok": 1.0}


def run_drop(store, db, body):
    name = body["drop"]
    if not store.exists(db, name):
        raise namespace_not_found(db, name)
    indexes = len(store.collection(db, name).index_information())
    store.client[db].drop_collection(name)
    return {"nIndexesWas": indexes, "ns": db + "." + name, "ok": 1.0}


def run_drop_database(store, db, body):
    store.client.drop_database(db)
    return {"dropped": db, "ok": 1.0}


def hello(store, db, body):
    reply = {"helloOk": True, "maxBsonObjectSize": MAX_BSON, "maxMessageSizeBytes": MAX_MESSAGE,
             "maxWriteBatchSize": 100000, "localTime": datetime.datetime.now(datetime.timezone.utc),
             "logicalSessionTimeoutMinutes": 30, "connectionId": 1, "minWireVersion": 0,
             "maxWireVersion": 13, "readOnly": False, "ok": 1.0}
    reply["isWritablePrimary" if "hello" in body else "ismaster"] = True
    return reply


def build_info(store, db, body):
    return {"version": "5.0.0", "versionArray": [5, 0, 0, 0], "maxBsonObjectSize": MAX_BSON,
            "bits": 64, "ok": 1.0}


def ok(store, db, body):
    return {"ok": 1.0}


COMMANDS = {
    "hello": hello, "ismaster": hello, "isMaster": hello, "ping": ok, "buildInfo": build_info,
    "buildinfo": build_info, "endSessions": ok, "insert": run_insert, "update": run_update,
    "delete": run_delete, "find": run_find, "getMore": run_get_more,
    "killCursors": run_kill_cursors, "findAndModify": run_find_and_modify,
    "findandmodify": run_find_and_modify, "aggregate": run_aggregate, "count": run_count,
    "createIndexes": run_create_indexes, "listIndexes": run_list_indexes,
    "listCollections": run_list_collections, "create": run_create, "drop": run_drop,
    "dropDatabase": run_drop_database,
}


def run_command(store, db, body):
    name = next(iter(body), "")
    handler = COMMANDS.get(name)
    if handler is None:
        return {"ok": 0.0, "errmsg": "no such command: '%s'" % name, "code": 59,
                "codeName": "CommandNotFound"}
    try:
        with store.lock:
            return handler(store, db, body)
    except CommandError as error:
        return {"ok": 0.0, "errmsg": error.message, "code": error.code, "codeName": error.name}
    except Exception as error:  # a reply, never a dropped connection
        return {"ok": 0.0, "errmsg": "%s: %s" % (type(error).__name__, error), "code": 2,
                "codeName": "BadValue"}


def cstring(data, at):
    end = data.index(b"\0", at)
    return data[at:end].decode(), end + 1


def parse_msg(data):
    """OP_MSG: (flags, body with document sequences merged in)."""
    (flags,) = struct.unpack_from("<I", data, 0)
    end = len(data) - (4 if flags & 1 else 0)
    at, body, sequences = 4, None, {}
    while at < end:
        kind = data[at]
        at += 1
        (size,) = struct.unpack_from("<i", data, at)
        if kind == 0:
            body = bson.decode(data[at:at + size], CODEC)
        elif kind == 1:
            name, start = cstring(data, at + 4)
            sequences[name] = bson.decode_all(data[start:at + size], CODEC)
        else:
            raise ValueError("unknown OP_MSG section kind %d" % kind)
        at += size
    if body is None:
        raise ValueError("OP_MSG without a body")
    body.update(sequences)
    return flags, body


class Handler(socketserver.BaseRequestHandler):
    def read_exactly(self, size):
        chunks, left = [], size
        while left:
            chunk = self.request.recv(min(left, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def send(self, response_to, opcode, payload):
        header = struct.pack("<iiii", 16 + len(payload), next(self.server.store.ids) & 0x7FFFFFFF,
                             response_to, opcode)
        self.request.sendall(header + payload)

    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            header = self.read_exactly(16)
            if header is None:
                return
            length, request_id, _, opcode = struct.unpack("<iiii", header)
            if length < 16 or length > MAX_MESSAGE + 16 * 1024:
                return
            data = self.read_exactly(length - 16)
            if data is None:
                return
            if opcode == OP_QUERY:
                (flags,) = struct.unpack_from("<i", data, 0)
                namespace, at = cstring(data, 4)
                query = bson.decode(data[at + 8:at + 8 + struct.unpack_from("<i", data, at + 8)[0]], CODEC)
                if "$query" in query:
                    query = query["$query"]
                db = namespace.split(".", 1)[0]
                if not namespace.endswith(".$cmd"):
                    reply = {"$err": "OP_QUERY is only supported for commands", "code": 5739101,
                             "ok": 0.0}
                elif next(iter(query), "") not in ("isMaster", "ismaster", "hello"):
                    reply = {"ok": 0.0, "errmsg": "Unsupported OP_QUERY command: " +
                             next(iter(query), ""), "code": 352, "codeName": "UnsupportedOpQueryCommand"}
                else:
                    reply = run_command(self.server.store, db, query)
                payload = struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(reply)
                self.send(request_id, OP_REPLY, payload)
            elif opcode == OP_MSG:
                flags, body = parse_msg(data)
                db = body.pop("$db", "admin")
                reply = run_command(self.server.store, db, body)
                if not flags & 2:  # moreToCome: the client wants no reply
                    self.send(request_id, OP_MSG, struct.pack("<IB", 0, 0) + bson.encode(reply))
            else:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.store = Store()
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
