// Opening the PostgreSQL plugin's store: settings, the table's names, the schema (created
// if missing, under a transaction lock so that concurrent first opens do not race; a table
// of another schema version is refused) and the statements every pooled connection prepares.
#include "backends/plugins/postgres/postgres_store.h"
#include "backends/plugins/plugin_settings.h"

#include <cctype>
#include <cstdlib>
#include <new>

namespace curlcache::plugins::postgres {

namespace {

bool is_identifier(const std::string& part) {
    if (part.empty() || part.size() > 50 || std::isdigit(static_cast<unsigned char>(part[0]))) {
        return false;
    }
    for (char c : part) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
            return false;
        }
    }
    return true;
}

// The server's clock in milliseconds: lock expiry compares one clock, whatever the clients'.
const std::string k_server_ms = "(extract(epoch FROM clock_timestamp()) * 1000)::int8";

// A CTE that takes the rows of `gone` (key, size) off the totals; the meta row is only
// written (locked) when something went.
std::string forget(const Names& n) {
    return "m AS (UPDATE " + n.meta +
           " SET total = total - (SELECT coalesce(sum(size), 0) FROM"
           " gone), entries = entries - (SELECT count(*) FROM gone) WHERE EXISTS (SELECT 1 FROM"
           " gone))";
}

std::vector<Statement> statements(const Names& n) {
    return {
        {"get",
         "SELECT 0 AS n, value FROM " + n.table + " WHERE key = $1 UNION ALL SELECT n, data FROM " +
             n.chunks + " WHERE key = $1 ORDER BY 1",
         1},
        {"meta",
         "SELECT method, url, status, created, expires, size FROM " + n.table + " WHERE key = $1",
         1},
        // open_value: size, the inline part's length, the generation (the xmin of chunk 1:
        // a replaced value has new chunk rows; an access-time update does not touch them)
        // and the inline value when it is the whole value and at most $2 bytes.
        {"open", "SELECT t.size::text, length(t.value)::text, coalesce((SELECT c.xmin::text FROM " +
                     n.chunks + " c WHERE c.key = $1 AND c.n = 1), ''), CASE WHEN t.size <= $2::int8"
                     " AND length(t.value) = t.size THEN t.value END FROM " + n.table +
                     " t WHERE t.key = $1", 2},
        // read_range: part of the inline value, or whole chunk rows, only of the generation
        // that was opened (one statement: one snapshot).
        {"range_inline", "SELECT substring(t.value FROM $2::int4 FOR $3::int4) FROM " + n.table +
                             " t WHERE t.key = $1 AND EXISTS (SELECT 1 FROM " + n.chunks +
                             " c WHERE c.key = $1 AND c.n = 1 AND c.xmin::text = $4)", 4},
        {"range_chunks", "SELECT data FROM " + n.chunks + " WHERE key = $1 AND n BETWEEN $2::int4"
                             " AND $3::int4 AND xmin::text = $4 ORDER BY n", 4},
        {"lock_key", "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", 2},
        {"del_chunks", "DELETE FROM " + n.chunks + " WHERE key = $1", 1},
        {"chunk", "INSERT INTO " + n.chunks + " (key, n, data) VALUES ($1, $2, $3)", 3},
        {"move_chunks", "UPDATE " + n.chunks + " SET key = $1 WHERE key = $2", 2},
        {"upsert",
         "INSERT INTO " + n.table +
             " (key, method, url, status, created, expires, size, accessed, value)"
             " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO UPDATE SET"
             " method = EXCLUDED.method, url = EXCLUDED.url, status = EXCLUDED.status,"
             " created = EXCLUDED.created, expires = EXCLUDED.expires,"
             " size = EXCLUDED.size, accessed = EXCLUDED.accessed, value = EXCLUDED.value",
         9},
        // The old size of a key being written (its row locked until COMMIT, so that a
        // concurrent remove counts what this write leaves).
        {"old_size", "SELECT size FROM " + n.table + " WHERE key = $1 FOR UPDATE", 1},
        {"total", "SELECT total FROM " + n.meta, 0},
        {"add", "UPDATE " + n.meta + " SET total = total + $1, entries = entries + $2", 2},
        // Least recently used first, by the accessed index: at most 256 rows a statement,
        // only as many as free $1 bytes, never the key being written ($2), and none that
        // another transaction holds (no waiting, no deadlock between two evicting writers).
        {"evict",
         "WITH gone AS (DELETE FROM " + n.table +
             " WHERE key IN (SELECT key FROM"
             " (SELECT key, sum(size) OVER (ORDER BY accessed, key) - size AS before FROM"
             " (SELECT key, size, accessed FROM " +
             n.table +
             " WHERE key <> $2 ORDER BY"
             " accessed, key LIMIT 256 FOR UPDATE SKIP LOCKED) AS oldest) AS ranked"
             " WHERE before < $1) RETURNING key, size), c AS (DELETE FROM " +
             n.chunks +
             " WHERE key IN (SELECT key FROM gone)) SELECT coalesce(sum(size), 0),"
             " count(*) FROM gone",
         2},
        {"remove",
         "WITH gone AS (DELETE FROM " + n.table +
             " WHERE key = $1 RETURNING key, size),"
             " c AS (DELETE FROM " +
             n.chunks + " WHERE key IN (SELECT key FROM gone)), " + forget(n) +
             " SELECT count(*) FROM gone",
         1},
        {"purge",
         "WITH gone AS (DELETE FROM " + n.table +
             " WHERE expires > 0 AND expires <= $1"
             " RETURNING key, size), c AS (DELETE FROM " +
             n.chunks + " WHERE key IN (SELECT key FROM gone)), " + forget(n) +
             " SELECT count(*) FROM gone",
         1},
        // Lock rows of holders that died long ago (a live holder's row is replaced).
        {"purge_locks", "DELETE FROM " + n.locks + " WHERE expires < " + k_server_ms + " - 3600000",
         0},
        {"usage", "SELECT entries, total FROM " + n.meta, 0},
        {"scan", "SELECT key, method, url, status, created, expires, size FROM " + n.table, 0},
        // Access times are best effort: a row another transaction holds (a writer replacing
        // or evicting it) is skipped, not waited for. Waiting made two writers that each
        // flushed their batch inside a put deadlock on each other's rows (PostgreSQL then
        // aborted one, and its put failed). A key touched twice in a batch counts once.
        {"touch",
         "UPDATE " + n.table + " AS t SET accessed = a.at FROM (SELECT l.key, u.at FROM " +
             n.table +
             " AS l JOIN (SELECT key, max(at) AS at FROM unnest($1::text[], $2::int8[]) AS"
             " v(key, at) GROUP BY key) AS u ON l.key = u.key WHERE l.accessed < u.at"
             " FOR UPDATE OF l SKIP LOCKED) AS a WHERE t.key = a.key",
         2},
        {"clear",
         "WITH c AS (DELETE FROM " + n.chunks + "), gone AS (DELETE FROM " + n.table +
             " RETURNING size), " + forget(n) + " SELECT count(*) FROM gone",
         0},
        {"try_lock", "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1},
        {"unlock", "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1},
        // Coalescing lock rows (postgres_stream.cpp): $1 key, $2 owner, $3 ttl in ms. With
        // the advisory lock: the row is ours unless a live taker's (taken, not expired).
        {"lock_row",
         "INSERT INTO " + n.locks + " AS l (key, owner, expires, taken) VALUES ($1, $2, " +
             k_server_ms +
             " + $3, false) ON CONFLICT (key) DO UPDATE SET owner ="
             " EXCLUDED.owner, expires = EXCLUDED.expires, taken = false WHERE NOT"
             " l.taken OR l.expires <= " +
             k_server_ms +
             " OR l.owner = EXCLUDED.owner"
             " RETURNING 1",
         3},
        // Without it (a live session holds it): only a row past its ttl is taken over.
        {"take_row",
         "UPDATE " + n.locks + " SET owner = $2, expires = " + k_server_ms +
             " + $3, taken = true WHERE key = $1 AND expires <= " + k_server_ms + " RETURNING 1",
         3},
        {"unlock_row", "DELETE FROM " + n.locks + " WHERE key = $1 AND owner = $2", 2},
    };
}

// Creates the tables of schema 2, or upgrades schema 1 (no totals, no lock rows) to it.
std::string schema_sql(const Names& n) {
    return "BEGIN; SELECT pg_advisory_xact_lock(hashtext('curlcache schema'));"
           " CREATE TABLE IF NOT EXISTS " +
           n.table +
           " (key text PRIMARY KEY, method text NOT NULL,"
           " url text NOT NULL, status integer NOT NULL, created bigint NOT NULL,"
           " expires bigint NOT NULL, size bigint NOT NULL, accessed bigint NOT NULL,"
           " value bytea NOT NULL);"
           " CREATE INDEX IF NOT EXISTS " +
           n.bare + "_expires ON " + n.table +
           " (expires) WHERE expires > 0;"
           " CREATE INDEX IF NOT EXISTS " +
           n.bare + "_accessed ON " + n.table +
           " (accessed);"
           " CREATE TABLE IF NOT EXISTS " +
           n.chunks +
           " (key text NOT NULL, n integer NOT NULL,"
           " data bytea NOT NULL, PRIMARY KEY (key, n));"
           // Bodies are mostly compressed already: no compression attempt on write or read.
           " ALTER TABLE " +
           n.table +
           " ALTER COLUMN value SET STORAGE EXTERNAL;"
           " ALTER TABLE " +
           n.chunks +
           " ALTER COLUMN data SET STORAGE EXTERNAL;"
           " CREATE TABLE IF NOT EXISTS " +
           n.meta +
           " (version integer NOT NULL);"
           " ALTER TABLE " +
           n.meta +
           " ADD COLUMN IF NOT EXISTS total bigint NOT NULL DEFAULT 0,"
           " ADD COLUMN IF NOT EXISTS entries bigint NOT NULL DEFAULT 0;"
           " CREATE TABLE IF NOT EXISTS " +
           n.locks +
           " (key text PRIMARY KEY, owner text NOT NULL,"
           " expires bigint NOT NULL, taken boolean NOT NULL);"
           " UPDATE " +
           n.meta + " SET version = 2, total = (SELECT coalesce(sum(size), 0) FROM " + n.table +
           "), entries = (SELECT count(*) FROM " + n.table +
           ") WHERE version = 1;"
           " INSERT INTO " +
           n.meta + " SELECT " + std::to_string(k_schema_version) +
           " WHERE NOT EXISTS (SELECT 1 FROM " + n.meta +
           ");"
           " COMMIT; SELECT version FROM " +
           n.meta + ";";
}

} // namespace


// The parts of a connection string that say where, never the password.
std::string describe(const std::string& url, const std::string& table) {
    char* message = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &message);
    PQfreemem(message);
    std::string host = "localhost", port = "5432", db;
    for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
        if (o->val == nullptr || *o->val == '\0') {
            continue;
        }
        const std::string keyword = o->keyword;
        if (keyword == "host" || keyword == "hostaddr") {
            host = o->val;
        } else if (keyword == "port") {
            port = o->val;
        } else if (keyword == "dbname") {
            db = o->val;
        }
    }
    PQconninfoFree(options);
    return "postgres://" + host + ":" + port + "/" + db + " table " + table;
}

curlcache_backend_status open_store(const curlcache_backend_host* host, Store** out,
                                    curlcache_backend_error* error) try {
    auto store = std::make_unique<Store>();
    store->host = host;
    store->max_size = host->max_size;
    const char* url = curlcache_backend_setting_get(host, "url");
    int64_t connect_timeout_ms = 1000;
    for (auto [key, target] : {std::pair{"connect_timeout", &connect_timeout_ms},
                               std::pair{"statement_timeout", &store->statement_timeout_ms}}) {
        if (const char* value = curlcache_backend_setting_get(host, key)) {
            *target = plugins::parse_ms(value);
            if (*target <= 0) {
                return report({CURLCACHE_BACKEND_FAILURE, std::string("postgres.") + key + ": bad "
                               "timeout \"" + value + "\" (milliseconds, \"250ms\", \"2s\")"}, error);
            }
        }
    }
    // postgres.table, else the cache name when it is a table name (in tiers such as
    // "sqlite,postgres" the name is sqlite's file), else "curlcache".
    const char* table = curlcache_backend_setting_get(host, "table");
    std::string name = table != nullptr ? table : host->cache_name;
    if (table == nullptr && (name.empty() || name.find('/') != std::string::npos)) {
        name = "curlcache";
    }
    const size_t dot = name.find('.');
    const std::string schema = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string bare = dot == std::string::npos ? name : name.substr(dot + 1);
    if ((dot != std::string::npos && !is_identifier(schema)) || !is_identifier(bare)) {
        return report({CURLCACHE_BACKEND_FAILURE, "cache name \"" + name + "\" is not a table name"
                       " (letters, digits, '_', optionally schema.table)"}, error);
    }
    const std::string prefix = schema.empty() ? "" : "\"" + schema + "\".";
    store->names = {prefix + "\"" + bare + "\"",
                    prefix + "\"" + bare + "_chunks\"",
                    prefix + "\"" + bare + "_meta\"",
                    prefix + "\"" + bare + "_locks\"",
                    bare,
                    name};
    const std::string conninfo = url != nullptr ? url : "";
    store->location = describe(conninfo, name);
    // The pool's connections prepare the statements on the tables created below.
    Failure failure;
    auto first = Connection::connect(conninfo, connect_timeout_ms, {}, store->location, failure);
    if (!first) {
        return report(failure, error);
    }
    // The tables are created once; later opens only read the version (no DDL, no lock).
    Result exists = first->exec("SELECT to_regclass('" + store->names.meta + "') IS NOT NULL",
                                store->statement_timeout_ms, failure);
    if (!exists) {
        return report(failure, error);
    }
    const bool created = std::string(PQgetvalue(exists.get(), 0, 0)) == "t";
    Result version = first->exec(created ? "SELECT version FROM " + store->names.meta
                                         : schema_sql(store->names),
                                 store->statement_timeout_ms, failure);
    if (version && PQntuples(version.get()) == 1 && int_at(version.get(), 0, 0) == 1) {
        version = first->exec(schema_sql(store->names), store->statement_timeout_ms, failure);
    }
    if (!version) {
        return report(failure, error);
    }
    if (PQntuples(version.get()) != 1 || int_at(version.get(), 0, 0) != k_schema_version) {
        return report({CURLCACHE_BACKEND_FAILURE, store->location + ": schema version " +
                       (PQntuples(version.get()) == 1 ? PQgetvalue(version.get(), 0, 0) : "?") +
                       ", this plugin reads " + std::to_string(k_schema_version)}, error);
    }
    store->pool = std::make_unique<Pool>(conninfo, store->location, connect_timeout_ms,
                                         statements(store->names));
    *out = store.release();
    return CURLCACHE_BACKEND_OK;
} catch (const std::bad_alloc&) {
    return report({CURLCACHE_BACKEND_FAILURE, "postgres: out of memory"}, error);
}

} // namespace curlcache::plugins::postgres
