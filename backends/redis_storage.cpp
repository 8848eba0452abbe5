// Redis backend. Layout under the namespace <ns> (the cache name, default "curlcache"): see
// redis_layout.h. Metadata lives beside each value so list/show never fetch values; usage reads
// exact counters kept in the same atomic step as every write (redis_layout.h), never a scan.
// Expiry is Redis's own (PEXPIREAT on both keys), redis.keep_stale after an entry goes stale:
// until then a request revalidates it (a 304 instead of the body) or it stands in when the
// origin fails or in offline mode, as a stale SQLite entry does. Scans use SCAN MATCH in batches of 500,
// never KEYS; clear deletes only this namespace, never FLUSHDB.
//
// Connections: a small pool (one connection per concurrent caller, idle ones kept) rather
// than one mutex-guarded connection, so threads never queue behind another's large value.
// After a failed connect, operations fail at once for k_retry_backoff_ms: a dead server
// costs one connect timeout per second, not one per transfer; and a process that opens the
// backend while another has found the server hung or down passes through at once, without
// connecting (backoff.h).
#include "backends/redis_connection.h"
#include "backends/redis_layout.h"
#include "backends/redis_storage.h"
#include "backends/redis_streams.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <limits>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unistd.h>
#include <unordered_map>

namespace curlcache::backends {
using namespace redis_layout;

namespace {

constexpr size_t k_scan_batch = 500;
constexpr size_t k_write_chunk = 1 << 20; // flush the output buffer every MiB of a value
constexpr size_t k_evict_batch = 256;      // entries one eviction script call removes at most
constexpr size_t k_reap_batch = 1000;      // expired entries one script call removes at most

// A compare-and-delete: only the holder's token removes the lock.
constexpr const char* k_unlock_script =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

class RedisStorage final : public Storage, public RedisStreamOwner {
public:
    RedisStorage(RedisPool pool, std::string ns, uint64_t max_size, int64_t keep_stale)
        : m_pool(std::move(pool)), m_ns(std::move(ns)), m_max_size(max_size),
          m_keep_stale(keep_stale) {}

    std::string_view name() const override { return "redis"; }
    std::string location() const override { return m_pool.endpoint().display() + ' ' + m_ns; }

    Result<std::optional<Blob>> get(std::string_view key) override {
        if (!valid_key(key)) {
            return std::optional<Blob>{};
        }
        std::string ekey = item(key, 'e');
        std::string now = std::to_string(now_us());
        return m_pool.run<std::optional<Blob>>(
            [&](RedisConnection& conn) -> Result<std::optional<Blob>> {
                if (m_max_size > 0) {
                    // Same round trip: note the access for LRU eviction (XX: only if listed).
                    conn.append({"GET", ekey});
                    conn.append({"ZADD", lru_key(), "XX", now, key});
                    auto value = conn.read_reply();
                    if (!value) {
                        return std::unexpected(value.error());
                    }
                    if (auto touched = conn.read_reply(); !touched) {
                        return std::unexpected(touched.error());
                    }
                    return blob_of(conn, ekey, std::move(value));
                }
                conn.append({"GET", ekey});
                return blob_of(conn, ekey, conn.read_reply());
            });
    }

    static bool is_wrong_type(const redisReply& reply) {
        return reply.type == REDIS_REPLY_ERROR &&
               std::string_view(reply.str, reply.len).starts_with("WRONGTYPE");
    }

    // A value streamed in is a hash (redis_streams.h): its head, token and sizes; nullopt
    // when it is gone (or is not one of ours).
    static Result<std::optional<RedisHashValue>> open_hash(RedisConnection& conn,
                                                           const std::string& ekey) {
        auto reply = conn.command({"HMGET", ekey, "h", "t", "s", "p"});
        if (!reply) {
            return std::unexpected(reply.error());
        }
        return parse_hash_value(**reply);
    }

    // A plain GETRANGE of the first whole_limit + 1 bytes: the whole value when it is not
    // longer (a small hit costs what a GET does, no script). A longer value then has its
    // length and first bytes read in one MULTI, and the bytes already read serve as the
    // reader's first piece when those first bytes match (else it changed: opened again).
    Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                  uint64_t whole_limit) override {
        using Found = std::optional<StoredValue>;
        if (!valid_key(key)) {
            return Found{};
        }
        if (whole_limit >= (uint64_t{1} << 62)) {
            return Storage::open_value(key, whole_limit); // get(): whole, whatever its size
        }
        std::string ekey = item(key, 'e');
        std::string now = std::to_string(now_us());
        const std::string last = std::to_string(whole_limit);
        const std::string generation_last = std::to_string(k_generation_bytes - 1);
        return m_pool.run<Found>([&](RedisConnection& conn) -> Result<Found> {
            for (int attempt = 0;; ++attempt) {
                conn.append({"GETRANGE", ekey, "0", last});
                if (m_max_size > 0 && attempt == 0) {
                    conn.append({"ZADD", lru_key(), "XX", now, key}); // as get() does
                }
                auto reply = conn.read_reply();
                if (m_max_size > 0 && attempt == 0) {
                    if (auto touched = conn.read_reply(); !touched) {
                        return std::unexpected(touched.error());
                    }
                }
                if (!reply) {
                    return std::unexpected(reply.error());
                }
                redisReply& r = **reply;
                if (is_wrong_type(r)) {
                    auto hash = open_hash(conn, ekey);
                    if (!hash || !*hash) {
                        return hash ? Result<Found>{Found{}} : std::unexpected(hash.error());
                    }
                    if ((*hash)->size > whole_limit) {
                        return Found{StoredValue{nullptr,
                                                 redis_hash_reader(m_pool, ekey, std::move(**hash))}};
                    }
                    auto whole = read_hash_whole(conn, ekey, **hash);
                    if (!whole) {
                        return std::unexpected(whole.error());
                    }
                    return Found{StoredValue{
                        std::make_shared<const std::string>(std::move(*whole)), nullptr}};
                }
                if (r.type == REDIS_REPLY_ERROR) {
                    return conn.reply_error(r); // NOAUTH, LOADING, ...
                }
                if (r.type != REDIS_REPLY_STRING) {
                    return fail(conn.where() + ": unexpected reply to GETRANGE");
                }
                if (r.len == 0) {
                    // A missing key reads as "". An empty value is never a string (put()
                    // stores it as a hash), so "" is a miss: no EXISTS round trip.
                    return Found{};
                }
                if (r.len <= whole_limit) {
                    return Found{StoredValue{
                        std::make_shared<const std::string>(take_reply_string(r)), nullptr}};
                }
                std::string head = take_reply_string(r);
                conn.append({"MULTI"});
                conn.append({"STRLEN", ekey});
                conn.append({"GETRANGE", ekey, "0", generation_last});
                conn.append({"EXEC"});
                auto read = read_transaction(conn, 2);
                if (!read) {
                    return std::unexpected(read.error());
                }
                RedisReplyPtr exec = std::move(*read);
                if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 2 ||
                    exec->element[0]->type != REDIS_REPLY_INTEGER ||
                    exec->element[1]->type != REDIS_REPLY_STRING) {
                    return fail(conn.where() + ": unexpected reply when opening a value");
                }
                const auto size = static_cast<uint64_t>(exec->element[0]->integer);
                std::string generation(exec->element[1]->str, exec->element[1]->len);
                const size_t common = std::min(head.size(), generation.size());
                if (size > whole_limit && size >= head.size() &&
                    head.compare(0, common, generation, 0, common) == 0) {
                    return Found{StoredValue{nullptr, redis_string_reader(m_pool, ekey,
                                                                          std::move(generation),
                                                                          size, std::move(head))}};
                }
                if (attempt >= 2) {
                    return fail(conn.where() + ": a value kept changing while it was opened");
                }
            }
        });
    }

    static Result<std::optional<Blob>> blob_of(RedisConnection& conn, const std::string& ekey,
                                               Result<RedisReplyPtr> reply) {
                if (!reply) {
                    return std::unexpected(reply.error());
                }
                if ((*reply)->type == REDIS_REPLY_NIL) {
                    return std::optional<Blob>{};
                }
                if (is_wrong_type(**reply)) {
                    auto hash = open_hash(conn, ekey);
                    if (!hash || !*hash) {
                        return hash ? Result<std::optional<Blob>>{std::optional<Blob>{}}
                                    : std::unexpected(hash.error());
                    }
                    auto whole = read_hash_whole(conn, ekey, **hash);
                    if (!whole) {
                        return std::unexpected(whole.error());
                    }
                    return std::optional<Blob>{std::make_shared<const std::string>(std::move(*whole))};
                }
                if ((*reply)->type == REDIS_REPLY_ERROR) {
                    return conn.reply_error(**reply); // NOAUTH, LOADING, ...
                }
                if ((*reply)->type != REDIS_REPLY_STRING) {
                    return fail(conn.where() + ": unexpected reply to GET");
                }
                return std::optional<Blob>{
                    std::make_shared<const std::string>(take_reply_string(**reply))};
    }

    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        if (!valid_key(key)) {
            return std::optional<Metadata>{};
        }
        std::string mkey = item(key, 'm');
        return m_pool.run<std::optional<Metadata>>(
            [&](RedisConnection& conn) -> Result<std::optional<Metadata>> {
                auto reply = conn.command({"GET", mkey});
                if (!reply) {
                    return std::unexpected(reply.error());
                }
                if ((*reply)->type != REDIS_REPLY_STRING) {
                    return std::optional<Metadata>{};
                }
                return decode_meta(key, {(*reply)->str, (*reply)->len});
            });
    }

    // One MULTI/EXEC: readers see the old entry or the new one. The value is streamed
    // into one SET as raw protocol, piece by piece, so it is never concatenated.
    Result<void> put(const Metadata& meta, Pieces value) override {
        if (!valid_key(meta.key)) {
            return fail("redis: invalid key \"" + meta.key + "\"");
        }
        uint64_t total = 0;
        for (auto piece : value) {
            total += piece.size();
        }
        std::string ekey = item(meta.key, 'e');
        std::string mkey = item(meta.key, 'm');
        std::string meta_text = encode_meta(meta, total);
        std::string expire_at = drop_at(meta);
        if (m_max_size > 0 && total > m_max_size) {
            // Larger than the whole cache: not stored, nothing evicted for it, and the
            // older value under this key goes (as in sqlite and filesystem), so it is never
            // served in place of the response that replaced it.
            auto removed = remove(meta.key);
            return removed ? Result<void>{} : std::unexpected(removed.error());
        }
        std::string now = std::to_string(now_us());
        std::string size = std::to_string(total);
        return m_pool.run<void>([&](RedisConnection& conn) -> Result<void> {
            // Replies to read back: +OK (MULTI), QUEUED per command, then EXEC's array.
            size_t replies = 2;
            conn.append({"MULTI"});
            if (total == 0) {
                // An empty value is a hash without pieces (redis_streams.h), so that an
                // empty string always means a missing key to open_value().
                conn.append({"DEL", ekey});
                conn.append({"HSET", ekey, "h", "", "t", random_token(), "s", "0", "p", "1"});
                ++replies;
            } else {
                std::string head = "*3\r\n$3\r\nSET\r\n$" + std::to_string(ekey.size()) + "\r\n" +
                                   ekey + "\r\n$" + std::to_string(total) + "\r\n";
                conn.append_raw(head);
                for (auto piece : value) {
                    for (size_t at = 0; at < piece.size(); at += k_write_chunk) {
                        conn.append_raw(piece.substr(at, k_write_chunk));
                        if (auto flushed = conn.flush(); !flushed) {
                            return flushed;
                        }
                    }
                }
                conn.append_raw("\r\n");
            }
            conn.append({"SET", mkey, meta_text});
            replies += 2;
            if (expire_at != "0") {
                conn.append({"PEXPIREAT", ekey, expire_at});
                conn.append({"PEXPIREAT", mkey, expire_at});
                replies += 2;
            }
            // The counters (and eviction when over max_size) change in the same EXEC.
            std::string max = std::to_string(m_max_size);
            conn.append({"EVAL", k_put_script, "4", usage_key(), sizes_key(), exp_key(),
                         lru_key(), meta.key, size, expire_at, now, max, prefix()});
            conn.append({"EXEC"});
            replies += 1; // the script's QUEUED (EXEC's reply is counted above)
            redisReply* accounted = nullptr;
            RedisReplyPtr exec;
            for (size_t i = 0; i < replies; ++i) {
                auto reply = conn.read_reply();
                if (!reply) {
                    return std::unexpected(reply.error());
                }
                if (i + 1 == replies) {
                    if ((*reply)->type != REDIS_REPLY_ARRAY) {
                        if ((*reply)->type == REDIS_REPLY_ERROR) {
                            return conn.reply_error(**reply); // EXECABORT: a command failed
                        }
                        return fail(conn.where() + ": transaction aborted");
                    }
                    exec = std::move(*reply);
                    accounted = exec->elements > 0 ? exec->element[exec->elements - 1] : nullptr;
                }
            }
            return counted_in(conn, accounted);
        });
    }

    // After the put (or commit) script's answer {bytes, counted, over}: the one-time
    // recount of an older version's entries, and the rest of an eviction.
    Result<void> counted_in(RedisConnection& conn, const redisReply* accounted) {
        if (accounted == nullptr || accounted->type != REDIS_REPLY_ARRAY ||
            accounted->elements != 3) {
            if (accounted != nullptr && accounted->type == REDIS_REPLY_ERROR) {
                return conn.reply_error(*accounted);
            }
            return fail(conn.where() + ": unexpected reply to the put script");
        }
        bool counted = accounted->element[1]->integer != 0;
        bool over = accounted->element[2]->integer != 0;
        if (!counted && m_max_size > 0 && !m_recounted.exchange(true)) {
            // Entries of an older version are not on the counters yet: max_size needs
            // them (once per process; usage() does the same for `curlcache stats`).
            if (auto adopted = recount(conn); !adopted) {
                return adopted;
            }
            over = true;
        }
        return over ? evict(conn) : Result<void>{};
    }

    // A value streamed in while it downloads (redis_streams.h): the tail goes to Redis in
    // pieces, so a large miss holds one piece, not the body.
    Result<std::unique_ptr<PutStream>> begin_put(uint64_t /*size_hint*/) override {
        try {
            return redis_put_stream(*this);
        } catch (const std::bad_alloc&) {
            return fail("redis: out of memory while starting a response body");
        }
    }

    // RedisStreamOwner
    RedisPool& pool() override { return m_pool; }
    std::string temp_item(std::string_view name) const override { return item(name, 't'); }
    uint64_t max_size() const override { return m_max_size; }

    Result<void> install(RedisConnection& conn, const Metadata& meta, uint64_t size,
                         const std::string& temp, uint64_t fields, int pending) override {
        const std::string expire_at = drop_at(meta);
        conn.append({"EVAL", k_commit_script, "7", usage_key(), sizes_key(), exp_key(), lru_key(),
                     temp, item(meta.key, 'e'), item(meta.key, 'm'), meta.key, std::to_string(size),
                     expire_at, std::to_string(now_us()), std::to_string(m_max_size), prefix(),
                     encode_meta(meta, size), std::to_string(fields)});
        std::optional<std::unexpected<Error>> refused;
        for (int i = 0; i < pending; ++i) {
            auto answer = conn.read_reply();
            if (!answer) {
                return std::unexpected(answer.error());
            }
            if ((*answer)->type == REDIS_REPLY_ERROR && !refused) {
                refused = conn.reply_error(**answer);
            }
        }
        auto reply = conn.read_reply();
        if (!reply) {
            return std::unexpected(reply.error());
        }
        if (refused) {
            return *refused;
        }
        if ((*reply)->type == REDIS_REPLY_NIL) {
            return fail(conn.where() + ": a streamed value expired before it was committed");
        }
        return counted_in(conn, reply->get());
    }

    // max_size for a Redis cache: the exact counters say when the cache is over it; then
    // expired entries go first, then the least recently used (<ns>:lru, scored by the time
    // of the last put or get), in script calls of at most k_evict_batch entries so that
    // Redis never blocks long, until it is within max_size. A put usually evicts in its own
    // EXEC (the put script); this finishes what one call could not.
    Result<void> evict(RedisConnection& conn) {
        if (auto reaped = reap(conn, redis_layout::now_us() / 1000); !reaped) {
            return std::unexpected(reaped.error());
        }
        std::string max = std::to_string(m_max_size);
        std::string batch = std::to_string(k_evict_batch);
        for (;;) {
            auto reply = conn.command({"EVAL", k_evict_script, "4", usage_key(), sizes_key(),
                                       exp_key(), lru_key(), max, batch, prefix()});
            if (!reply) {
                return std::unexpected(reply.error());
            }
            if ((*reply)->type != REDIS_REPLY_INTEGER || (*reply)->integer == 0) {
                return {};
            }
        }
    }

    // Takes the entries expired by `now_ms` off the counters and indexes; how many.
    Result<uint64_t> reap(RedisConnection& conn, int64_t now_ms) {
        std::string now = std::to_string(now_ms);
        std::string batch = std::to_string(k_reap_batch);
        uint64_t total = 0;
        for (;;) {
            auto reply = conn.command({"EVAL", k_reap_script, "4", usage_key(), sizes_key(),
                                       exp_key(), lru_key(), now, batch, prefix()});
            if (!reply) {
                return std::unexpected(reply.error());
            }
            long long n = (*reply)->type == REDIS_REPLY_INTEGER ? (*reply)->integer : 0;
            total += static_cast<uint64_t>(std::max(0LL, n));
            if (n < static_cast<long long>(k_reap_batch)) {
                return total;
            }
        }
    }

    // Puts every entry the counters do not know yet on them (entries of an older version,
    // or all of them after `forget`), then marks the namespace counted. Safe while others
    // write: an entry is adopted only if it still exists and is not counted already.
    Result<void> recount(RedisConnection& conn) {
        std::string now = std::to_string(redis_layout::now_us());
        bool go_on = true;
        auto scanned = scan_keys(conn, glob_escape(m_ns) + ":m:*",
                                 [&](std::vector<std::string>& keys) -> Result<bool> {
            std::vector<std::string> args{"EVAL",    k_adopt_script, "4",     usage_key(),
                                          sizes_key(), exp_key(),    lru_key(), prefix(), now};
            auto visited = visit_batch(conn, keys, [&](const Metadata& meta) {
                args.push_back(meta.key);
                args.push_back(std::to_string(meta.size));
                args.push_back(drop_at(meta));
                return true;
            }, go_on);
            if (!visited || args.size() == 9) {
                return visited;
            }
            auto adopted = conn.command(args);
            return adopted ? Result<bool>{true} : std::unexpected(adopted.error());
        });
        if (!scanned) {
            return scanned;
        }
        auto marked = conn.command({"HSET", usage_key(), "counted", "1"});
        return marked ? Result<void>{} : std::unexpected(marked.error());
    }

    Result<bool> remove(std::string_view key) override {
        if (!valid_key(key)) {
            return false;
        }
        return m_pool.run<bool>([&](RedisConnection& conn) -> Result<bool> {
            auto reply = conn.command({"EVAL", k_remove_script, "4", usage_key(), sizes_key(),
                                       exp_key(), lru_key(), key, prefix()});
            if (!reply) {
                return std::unexpected(reply.error());
            }
            return (*reply)->type == REDIS_REPLY_INTEGER && (*reply)->integer > 0;
        });
    }

    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        return m_pool.run<void>([&](RedisConnection& conn) -> Result<void> {
            bool go_on = true;
            return scan_keys(conn, glob_escape(m_ns) + ":m:*",
                             [&](std::vector<std::string>& keys) -> Result<bool> {
                                 return visit_batch(conn, keys, visit, go_on);
                             });
        });
    }

    // Deletes the namespace's keys, counters included, and starts counting from zero.
    Result<void> clear() override {
        return m_pool.run<void>([&](RedisConnection& conn) -> Result<void> {
            auto cleared = scan_keys(conn, glob_escape(m_ns) + ":*",
                             [&](std::vector<std::string>& keys) -> Result<bool> {
                                 std::vector<std::string> args{"DEL"};
                                 for (auto& key : keys) {
                                     if (own_item(key, 'e') || own_item(key, 'm') ||
                                         own_item(key, 't') ||
                                         key == lru_key() || key == bytes_key() ||
                                         key == usage_key() || key == sizes_key() ||
                                         key == exp_key()) {
                                         args.push_back(std::move(key));
                                     }
                                 }
                                 if (args.size() > 1) {
                                     auto reply = conn.command(args);
                                     if (!reply) {
                                         return std::unexpected(reply.error());
                                     }
                                 }
                                 return true;
                             });
            if (!cleared) {
                return cleared;
            }
            auto marked = conn.command({"HSET", usage_key(), "counted", "1"});
            return marked ? Result<void>{} : std::unexpected(marked.error());
        });
    }

    // The counters, after taking expired entries off them; no scan (but a one-time
    // recount for a namespace an older version filled).
    Result<Usage> usage() override {
        return m_pool.run<Usage>([&](RedisConnection& conn) -> Result<Usage> {
            if (auto reaped = reap(conn, redis_layout::now_us() / 1000); !reaped) {
                return std::unexpected(reaped.error());
            }
            for (int attempt = 0;; ++attempt) {
                auto reply = conn.command({"HMGET", usage_key(), "entries", "bytes", "counted"});
                if (!reply) {
                    return std::unexpected(reply.error());
                }
                redisReply* r = reply->get();
                if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
                    return fail(conn.where() + ": unexpected reply to HMGET");
                }
                if (r->element[2]->type != REDIS_REPLY_STRING && attempt == 0) {
                    if (auto adopted = recount(conn); !adopted) {
                        return std::unexpected(adopted.error());
                    }
                    continue;
                }
                auto number = [](redisReply* field) -> uint64_t {
                    if (field->type != REDIS_REPLY_STRING) {
                        return 0;
                    }
                    long long value = std::strtoll(field->str, nullptr, 10);
                    return value > 0 ? static_cast<uint64_t>(value) : 0;
                };
                return Usage{number(r->element[0]), number(r->element[1]), m_max_size};
            }
        });
    }

    // Redis drops expired keys itself; this takes them off the counters. No scan.
    Result<uint64_t> purge_expired(int64_t now) override {
        return m_pool.run<uint64_t>(
            [&](RedisConnection& conn) -> Result<uint64_t> { return reap(conn, now * 1000); });
    }

    // Recounts from scratch: takes off the counters the entries that are gone without
    // them (deleted behind curlcache's back, e.g. by a maxmemory policy), then adopts the
    // ones they miss. What to run when `stats` looks wrong.
    Result<void> vacuum() override {
        return m_pool.run<void>([&](RedisConnection& conn) -> Result<void> {
            auto forgot = iterate(conn, {"HSCAN", sizes_key()}, {}, 2,
                                  [&](std::vector<std::string>& keys) -> Result<bool> {
                std::vector<std::string> args{"EVAL",    k_forget_script, "4",     usage_key(),
                                              sizes_key(), exp_key(),     lru_key(), prefix()};
                args.insert(args.end(), keys.begin(), keys.end());
                if (keys.empty()) {
                    return true;
                }
                auto done = conn.command(args);
                return done ? Result<bool>{true} : std::unexpected(done.error());
            });
            if (!forgot) {
                return forgot;
            }
            return recount(conn);
        });
    }

    Result<bool> try_lock(std::string_view key, int64_t ttl_ms) override {
        if (!valid_key(key)) {
            return fail("redis: invalid key \"" + std::string(key) + "\"");
        }
        std::string lkey = lock_item(key);
        std::string token = random_token();
        std::string ttl = std::to_string(ttl_ms > 0 ? ttl_ms : 1);
        auto locked = m_pool.run<bool>([&](RedisConnection& conn) -> Result<bool> {
            auto reply = conn.command({"SET", lkey, token, "NX", "PX", ttl});
            if (!reply) {
                return std::unexpected(reply.error());
            }
            return (*reply)->type == REDIS_REPLY_STATUS;
        });
        if (locked && *locked) {
            std::lock_guard guard(m_tokens_mutex);
            forget_tokens_after_fork();
            m_tokens[lkey] = std::move(token);
        }
        return locked;
    }

    Result<void> unlock(std::string_view key) override {
        std::string lkey = lock_item(key);
        std::string token;
        {
            std::lock_guard guard(m_tokens_mutex);
            forget_tokens_after_fork();
            auto found = m_tokens.find(lkey);
            if (found == m_tokens.end()) {
                return {};
            }
            token = std::move(found->second);
            m_tokens.erase(found);
        }
        return m_pool.run<void>([&](RedisConnection& conn) -> Result<void> {
            auto reply = conn.command({"EVAL", k_unlock_script, "1", lkey, token});
            if (!reply) {
                return std::unexpected(reply.error());
            }
            return {};
        });
    }

private:
    std::string item(std::string_view key, char kind) const {
        std::string out = m_ns;
        out += ':';
        out += kind;
        out += ':';
        out += key;
        return out;
    }
    std::string lock_item(std::string_view key) const { return m_ns + ":lock:" + std::string(key); }
    std::string lru_key() const { return m_ns + ":lru"; }
    std::string bytes_key() const { return m_ns + ":bytes"; } // an older version's; deleted
    std::string usage_key() const { return m_ns + ":usage"; }
    std::string sizes_key() const { return m_ns + ":sizes"; }
    std::string exp_key() const { return m_ns + ":exp"; }
    std::string prefix() const { return m_ns + ":"; }

    // True for "<ns>:<kind>:<key>" with a valid key (another namespace such as "<ns>:m"
    // never matches: its keys have one more colon).
    bool own_item(std::string_view full, char kind) const {
        return full.size() > m_ns.size() + 3 && full.starts_with(m_ns) &&
               full[m_ns.size()] == ':' && full[m_ns.size() + 1] == kind &&
               full[m_ns.size() + 2] == ':' && valid_key(full.substr(m_ns.size() + 3));
    }

    using Batch = std::function<Result<bool>(std::vector<std::string>&)>;

    // SCAN MATCH pattern COUNT 500 until the cursor returns to 0 or `batch` says stop.
    static Result<void> scan_keys(RedisConnection& conn, const std::string& pattern,
                                  const Batch& batch) {
        return iterate(conn, {"SCAN"}, {"MATCH", pattern}, 1, batch);
    }

    // A cursor command (SCAN, HSCAN key) in batches of k_scan_batch: `batch` gets every
    // `stride`-th element of each answer (HSCAN answers field, value pairs).
    static Result<void> iterate(RedisConnection& conn, std::vector<std::string> head,
                                const std::vector<std::string>& tail, size_t stride,
                                const Batch& batch) {
        std::string cursor = "0";
        size_t at = head.size();
        head.push_back(cursor);
        head.insert(head.end(), tail.begin(), tail.end());
        head.push_back("COUNT");
        head.push_back(std::to_string(k_scan_batch));
        do {
            head[at] = cursor;
            auto reply = conn.command(head);
            if (!reply) {
                return std::unexpected(reply.error());
            }
            redisReply* r = reply->get();
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                r->element[0]->type != REDIS_REPLY_STRING ||
                r->element[1]->type != REDIS_REPLY_ARRAY) {
                return fail(conn.where() + ": unexpected reply to " + head[0]);
            }
            cursor.assign(r->element[0]->str, r->element[0]->len);
            std::vector<std::string> keys;
            for (size_t i = 0; i < r->element[1]->elements; i += stride) {
                redisReply* key = r->element[1]->element[i];
                if (key->type == REDIS_REPLY_STRING) {
                    keys.emplace_back(key->str, key->len);
                }
            }
            auto more = batch(keys);
            if (!more) {
                return std::unexpected(more.error());
            }
            if (!*more) {
                break;
            }
        } while (cursor != "0");
        return {};
    }

    Result<bool> visit_batch(RedisConnection& conn, std::vector<std::string>& keys,
                             const std::function<bool(const Metadata&)>& visit, bool& go_on) {
        std::vector<std::string> args{"MGET"};
        for (auto& key : keys) {
            if (own_item(key, 'm')) {
                args.push_back(std::move(key));
            }
        }
        if (args.size() == 1) {
            return true;
        }
        auto reply = conn.command(args);
        if (!reply) {
            return std::unexpected(reply.error());
        }
        redisReply* r = reply->get();
        if (r->type != REDIS_REPLY_ARRAY || r->elements != args.size() - 1) {
            return fail(conn.where() + ": unexpected reply to MGET");
        }
        for (size_t i = 0; i < r->elements && go_on; ++i) {
            if (r->element[i]->type != REDIS_REPLY_STRING) {
                continue; // expired or removed since SCAN saw it
            }
            std::string_view key = std::string_view(args[i + 1]).substr(m_ns.size() + 3);
            auto meta = decode_meta(key, {r->element[i]->str, r->element[i]->len});
            if (meta) {
                go_on = visit(*meta);
            }
        }
        return go_on;
    }

    // A child must not release its parent's locks.
    void forget_tokens_after_fork() {
        if (m_tokens_pid != getpid()) {
            m_tokens.clear();
            m_tokens_pid = getpid();
        }
    }

    // When Redis drops an entry (PEXPIREAT, and its score in the expiry index that purge and
    // eviction read), in milliseconds; "0" for never: keep_stale after it goes stale, counted
    // from when it was stored for one stale from the start (no-cache, max-age=0).
    // A time past what milliseconds since 1970 can hold (an absurd keep_stale) is never.
    std::string drop_at(const Metadata& meta) const {
        constexpr int64_t k_limit = std::numeric_limits<int64_t>::max() / 1000;
        const int64_t from = std::max(meta.expires, meta.created);
        if (meta.expires == 0 || m_keep_stale < 0 || from >= k_limit ||
            m_keep_stale >= k_limit - from) {
            return "0";
        }
        return std::to_string((from + m_keep_stale) * 1000);
    }

    RedisPool m_pool;
    std::string m_ns;
    uint64_t m_max_size;
    int64_t m_keep_stale; // seconds; -1 = never dropped for being stale
    std::atomic<bool> m_recounted{false};
    std::mutex m_tokens_mutex;
    pid_t m_tokens_pid = getpid();
    std::unordered_map<std::string, std::string> m_tokens; // lock key -> our token
};

} // namespace

Result<std::unique_ptr<Storage>> open_redis(const config::Settings& settings) {
    auto endpoint = parse_redis_url(settings.redis_url);
    if (!endpoint) {
        return std::unexpected(endpoint.error());
    }
    std::string ns = settings.name.empty() ? "curlcache" : settings.name;
    if (ns.find_first_of(" \r\n") != std::string::npos) {
        return fail("redis: cache name \"" + ns + "\" must not contain spaces or newlines");
    }
    // A server another process found hung or down moments ago is not tried again here:
    // the transfers pass through at once (backoff.h).
    auto shared = std::make_shared<SharedBackoff>(endpoint->display());
    if (auto wait = shared->check()) {
        return fail("redis " + endpoint->display() + " " + shared->describe(*wait));
    }
    RedisPool pool(*endpoint, settings.redis_connect_timeout_ms,
                   settings.redis_command_timeout_ms, std::move(shared));
    // One PING: an unreachable, hung or password-protected server is reported now.
    auto checked = pool.run<void>([](RedisConnection& conn) -> Result<void> {
        auto reply = conn.command({"PING"});
        if (!reply) {
            return std::unexpected(reply.error());
        }
        return {};
    });
    if (!checked) {
        return std::unexpected(checked.error());
    }
    return std::make_unique<RedisStorage>(std::move(pool), std::move(ns), settings.max_size,
                                          settings.redis_keep_stale);
}

} // namespace curlcache::backends
