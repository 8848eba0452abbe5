#include "backends/plugin_storage.h"

#include "backends/backoff.h"
#include "backends/plugin_loader.h"
#include "core/log.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <xxhash.h>
#include <exception>
#include <utility>
#include <vector>

namespace curlcache::backends {

namespace {

using Status = curlcache_backend_status;

// The C view of a Metadata; the strings it points at are meta's.
curlcache_backend_metadata to_c(const Metadata& meta) {
    return {meta.key.c_str(), meta.method.c_str(), meta.url.c_str(), meta.status,
            meta.created,     meta.expires,        meta.size};
}

Metadata from_c(const curlcache_backend_metadata& meta) {
    auto text = [](const char* s) { return std::string(s != nullptr ? s : ""); };
    return {text(meta.key),  text(meta.method), text(meta.url), meta.status,
            meta.created, meta.expires,      meta.size};
}

// One call's error buffer, turned into a Result error.
class Call {
public:
    curlcache_backend_error* operator&() { return &m_error; }

    std::unexpected<Error> error(Status status, std::string_view plugin, const char* what) {
        m_error.message[sizeof m_error.message - 1] = '\0';
        std::string message = m_error.message;
        if (message.empty()) {
            message = std::string(plugin) + ": " + what + " failed";
        }
        return status == CURLCACHE_BACKEND_TIMEOUT ? timed_out(std::move(message))
                                                   : fail(std::move(message));
    }

private:
    curlcache_backend_error m_error{};
};

// Calls `visit` for each entry a plugin reports; exceptions stay on this side of the C
// boundary and are rethrown once the plugin has returned.
struct Visitor {
    const std::function<bool(const Metadata&)>* visit;
    std::exception_ptr thrown;

    static int call(void* context, const curlcache_backend_metadata* meta) {
        auto* self = static_cast<Visitor*>(context);
        try {
            return (*self->visit)(from_c(*meta)) ? 1 : 0;
        } catch (...) {
            self->thrown = std::current_exception();
            return 0;
        }
    }
    void rethrow() const {
        if (thrown) {
            std::rethrow_exception(thrown);
        }
    }
};

// The host struct handed to open(), with the storage its pointers point into.
struct Host {
    curlcache_backend_host host{}; // first: log() finds the Host from &host
    std::string name;              // the plugin's name, for log lines
    std::string cache_name;
    std::vector<std::pair<std::string, std::string>> texts;
    std::vector<curlcache_backend_setting> settings;

    static void log(const curlcache_backend_host* host, curlcache_backend_log_level level,
                    const char* message) {
        const auto* self = reinterpret_cast<const Host*>(host);
        const auto ours = static_cast<config::LogLevel>(level);
        if (core::log::enabled(ours)) {
            core::log::write(ours, "%s: %s", self->name.c_str(), message ? message : "");
        }
    }
    static int log_enabled(curlcache_backend_log_level level) {
        return core::log::enabled(static_cast<config::LogLevel>(level)) ? 1 : 0;
    }
};

class PluginPutStream final : public PutStream {
public:
    PluginPutStream(const curlcache_backend_plugin& table, curlcache_backend_stream* stream)
        : m_table(table), m_stream(stream) {}
    ~PluginPutStream() override { m_table.close_stream(m_stream); }

    Result<void> append(std::string_view bytes) override {
        Call call;
        const Status status = m_table.append(m_stream, bytes.data(), bytes.size(), &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "append");
        }
        return {};
    }

    Result<void> commit(const Metadata& meta, std::string_view head) override {
        Call call;
        const curlcache_backend_metadata c_meta = to_c(meta);
        const Status status = m_table.commit(m_stream, &c_meta, head.data(), head.size(), &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "commit");
        }
        return {};
    }

private:
    const curlcache_backend_plugin& m_table;
    curlcache_backend_stream* m_stream;
};

// What get() and open_value() collect from a plugin's sink.
struct Collect {
    std::string value;
    static void hint(void* context, uint64_t total) {
        try {
            static_cast<Collect*>(context)->value.reserve(total);
        } catch (...) {
            // A wrong hint costs only the reservation.
        }
    }
    static int write(void* context, const char* data, size_t size) {
        try {
            static_cast<Collect*>(context)->value.append(data, size);
            return 0;
        } catch (...) {
            return 1;
        }
    }
};

class PluginValueReader final : public ValueReader {
public:
    PluginValueReader(const curlcache_backend_plugin& table, curlcache_backend_value* value,
                      uint64_t size)
        : m_table(table), m_value(value), m_size(size) {}
    ~PluginValueReader() override { m_table.close_value(m_value); }

    uint64_t size() const override { return m_size; }

    Result<void> read(uint64_t offset, std::span<char> out) override {
        if (offset > m_size || out.size() > m_size - offset) {
            return fail(std::string(m_table.name) + ": read past the end of a value");
        }
        Call call;
        const Status status = m_table.read_range(m_value, offset, out.data(), out.size(), &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "read_range");
        }
        return {};
    }

private:
    const curlcache_backend_plugin& m_table;
    curlcache_backend_value* m_value;
    uint64_t m_size;
};

class PluginStorage final : public Storage {
public:
    PluginStorage(const curlcache_backend_plugin& table, std::unique_ptr<Host> host,
                  curlcache_backend_store* store)
        : m_table(table), m_host(std::move(host)), m_store(store) {}
    ~PluginStorage() override { m_table.close(m_store); }

    std::string_view name() const override { return m_table.name; }

    std::string location() const override {
        const char* where = m_table.location ? m_table.location(m_store) : nullptr;
        return where != nullptr ? where : m_host->cache_name;
    }

    Result<std::optional<Blob>> get(std::string_view key) override {
        Collect collect;
        const curlcache_backend_sink sink{&collect, Collect::hint, Collect::write};
        const std::string c_key(key);
        int found = 0;
        Call call;
        const Status status = m_table.get(m_store, c_key.c_str(), &sink, &found, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "get");
        }
        if (found == 0) {
            return std::optional<Blob>{};
        }
        return std::optional<Blob>{std::make_shared<const std::string>(std::move(collect.value))};
    }

    // ABI 1.1: a plugin that reads ranges streams large values; an older one is read whole
    // through get() (Storage::open_value).
    Result<std::optional<StoredValue>> open_value(std::string_view key,
                                                  uint64_t whole_limit) override {
        using Found = std::optional<StoredValue>;
        if (!CURLCACHE_BACKEND_HAS(&m_table, open_value) ||
            !CURLCACHE_BACKEND_HAS(&m_table, read_range) ||
            !CURLCACHE_BACKEND_HAS(&m_table, close_value)) {
            return Storage::open_value(key, whole_limit);
        }
        Collect collect;
        const curlcache_backend_sink sink{&collect, Collect::hint, Collect::write};
        const std::string c_key(key);
        int found = 0;
        uint64_t size = 0;
        curlcache_backend_value* value = nullptr;
        Call call;
        const Status status = m_table.open_value(m_store, c_key.c_str(), whole_limit, &sink, &found,
                                                 &size, &value, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            if (value != nullptr) {
                m_table.close_value(value);
            }
            return call.error(status, m_table.name, "open_value");
        }
        if (found == 0) {
            return Found{};
        }
        if (value == nullptr) {
            return Found{StoredValue{std::make_shared<const std::string>(std::move(collect.value)),
                                     nullptr}};
        }
        return Found{StoredValue{nullptr, std::make_unique<PluginValueReader>(m_table, value, size)}};
    }

    Result<void> put(const Metadata& meta, Pieces value) override {
        std::vector<curlcache_backend_bytes> pieces;
        pieces.reserve(value.size());
        for (std::string_view piece : value) {
            pieces.push_back({piece.data(), piece.size()});
        }
        const curlcache_backend_metadata c_meta = to_c(meta);
        Call call;
        const Status status = m_table.put(m_store, &c_meta, pieces.data(), pieces.size(), &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "put");
        }
        return {};
    }

    Result<std::unique_ptr<PutStream>> begin_put(uint64_t size_hint) override {
        if (!CURLCACHE_BACKEND_HAS(&m_table, begin_put) ||
            !CURLCACHE_BACKEND_HAS(&m_table, append) || !CURLCACHE_BACKEND_HAS(&m_table, commit) ||
            !CURLCACHE_BACKEND_HAS(&m_table, close_stream)) {
            return Storage::begin_put(size_hint);
        }
        curlcache_backend_stream* stream = nullptr;
        Call call;
        const Status status = m_table.begin_put(m_store, size_hint, &stream, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "begin_put");
        }
        return std::unique_ptr<PutStream>(new PluginPutStream(m_table, stream));
    }

    Result<bool> remove(std::string_view key) override {
        const std::string c_key(key);
        int existed = 0;
        Call call;
        const Status status = m_table.remove(m_store, c_key.c_str(), &existed, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "remove");
        }
        return existed != 0;
    }

    Result<void> scan(const std::function<bool(const Metadata&)>& visit) override {
        Visitor visitor{&visit, nullptr};
        Call call;
        const Status status = m_table.scan(m_store, Visitor::call, &visitor, &call);
        visitor.rethrow();
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "scan");
        }
        return {};
    }

    Result<void> clear() override {
        Call call;
        const Status status = m_table.clear(m_store, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "clear");
        }
        return {};
    }

    Result<Usage> usage() override {
        curlcache_backend_usage c_usage{};
        Call call;
        const Status status = m_table.usage(m_store, &c_usage, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "usage");
        }
        return Usage{c_usage.entries, c_usage.bytes, c_usage.max_bytes};
    }

    Result<uint64_t> purge_expired(int64_t now) override {
        if (!CURLCACHE_BACKEND_HAS(&m_table, purge_expired)) {
            return Storage::purge_expired(now);
        }
        uint64_t removed = 0;
        Call call;
        const Status status = m_table.purge_expired(m_store, now, &removed, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "purge");
        }
        return removed;
    }

    void flush() override {
        if (CURLCACHE_BACKEND_HAS(&m_table, flush)) {
            m_table.flush(m_store);
        }
    }

    Result<void> vacuum() override {
        if (!CURLCACHE_BACKEND_HAS(&m_table, vacuum)) {
            return {};
        }
        Call call;
        const Status status = m_table.vacuum(m_store, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "vacuum");
        }
        return {};
    }

    Result<bool> try_lock(std::string_view key, int64_t ttl_ms) override {
        if (!CURLCACHE_BACKEND_HAS(&m_table, try_lock) || !CURLCACHE_BACKEND_HAS(&m_table, unlock)) {
            return Storage::try_lock(key, ttl_ms);
        }
        const std::string c_key(key);
        int acquired = 0;
        Call call;
        const Status status = m_table.try_lock(m_store, c_key.c_str(), ttl_ms, &acquired, &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "try_lock");
        }
        return acquired != 0;
    }

    Result<void> unlock(std::string_view key) override {
        if (!CURLCACHE_BACKEND_HAS(&m_table, try_lock) || !CURLCACHE_BACKEND_HAS(&m_table, unlock)) {
            return Storage::unlock(key);
        }
        const std::string c_key(key);
        Call call;
        const Status status = m_table.unlock(m_store, c_key.c_str(), &call);
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "unlock");
        }
        return {};
    }

    Result<std::optional<Metadata>> get_metadata(std::string_view key) override {
        if (!CURLCACHE_BACKEND_HAS(&m_table, get_metadata)) {
            return Storage::get_metadata(key);
        }
        std::optional<Metadata> found;
        const std::function<bool(const Metadata&)> keep = [&found](const Metadata& meta) {
            found = meta;
            return false;
        };
        Visitor visitor{&keep, nullptr};
        const std::string c_key(key);
        Call call;
        const Status status =
            m_table.get_metadata(m_store, c_key.c_str(), Visitor::call, &visitor, &call);
        visitor.rethrow();
        if (status != CURLCACHE_BACKEND_OK) {
            return call.error(status, m_table.name, "get_metadata");
        }
        return found;
    }

private:
    const curlcache_backend_plugin& m_table;
    std::unique_ptr<Host> m_host; // open() was handed m_host->host: lives as long as the store
    curlcache_backend_store* m_store;
};

std::unique_ptr<Host> make_host(const curlcache_backend_plugin& table,
                                const config::Settings& settings) {
    auto host = std::make_unique<Host>();
    host->name = table.name;
    host->cache_name = settings.name;
    if (auto found = settings.plugin_tables.find(host->name); found != settings.plugin_tables.end()) {
        host->texts = found->second;
    }
    for (const auto& [key, value] : host->texts) {
        host->settings.push_back({key.c_str(), value.c_str()});
    }
    curlcache_backend_host& h = host->host;
    h.abi_major = CURLCACHE_BACKEND_ABI_MAJOR;
    h.abi_minor = CURLCACHE_BACKEND_ABI_MINOR;
    h.size = sizeof h;
    h.log = Host::log;
    h.log_enabled = Host::log_enabled;
    h.curl = real_curl();
    h.cache_name = host->cache_name.c_str();
    h.max_size = settings.max_size;
    h.settings = host->settings.data();
    h.setting_count = host->settings.size();
    return host;
}

} // namespace

Result<std::unique_ptr<Storage>> open_plugin(std::string_view name,
                                             const config::Settings& settings) {
    const std::string path = plugin_file(name, settings);
    auto table = load_plugin(path);
    if (!table) {
        return std::unexpected(table.error());
    }
    auto host = make_host(**table, settings);
    // A server that another process found hung moments ago is not tried again here: the
    // transfers pass through at once (backoff.h). The host cannot parse a plugin's settings,
    // so the server is named by the plugin, the cache and a digest of its config table
    // (which may hold a password).
    std::string digested = settings.name;
    for (const auto& [key, value] : host->texts) {
        digested += '\n' + key + '=' + value;
    }
    char digest[17];
    std::snprintf(digest, sizeof digest, "%016" PRIx64, static_cast<uint64_t>(
                                                            XXH3_64bits(digested.data(), digested.size())));
    SharedBackoff backoff(host->name + " plugin (settings " + digest + ")");
    if (auto wait = backoff.check()) {
        return fail("backend plugin " + path + ": " + host->name + " " + backoff.describe(*wait));
    }
    curlcache_backend_store* store = nullptr;
    Call call;
    const Status status = (*table)->open(&host->host, &store, &call);
    if (status != CURLCACHE_BACKEND_OK) {
        if (status == CURLCACHE_BACKEND_TIMEOUT) {
            backoff.failed();
        }
        auto error = call.error(status, (*table)->name, "open");
        error.error().message = "backend plugin " + path + ": " + error.error().message;
        return error;
    }
    backoff.succeeded();
    return std::make_unique<PluginStorage>(**table, std::move(host), store);
}

} // namespace curlcache::backends
