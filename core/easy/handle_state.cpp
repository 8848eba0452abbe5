// The handle registry and option recording.
#include "core/easy/handle_state.h"

#include "core/easy/http_text.h"

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <unordered_map>

// Deprecated options (PUT, HTTPPOST, PROGRESSFUNCTION) are still set by programs.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace curlcache::core::easy {

namespace {

// Sharded so that threads with their own handles rarely meet on one mutex; a lookup is a
// hash, a lock and a find.
constexpr size_t k_shards = 16;

struct Shard {
    std::mutex mutex;
    std::unordered_map<CURL*, std::unique_ptr<HandleState>> states;
};

std::array<Shard, k_shards>* g_shards = nullptr;

// fork() while another thread holds a shard lock would leave it locked forever in the
// child. Every registry function holds one shard lock at a time and calls nothing while
// holding it, so taking them all, in order, around fork cannot deadlock.
void lock_all_shards() {
    for (auto& shard : *g_shards) {
        shard.mutex.lock();
    }
}
void unlock_all_shards() {
    for (auto& shard : *g_shards) {
        shard.mutex.unlock();
    }
}

std::array<Shard, k_shards>& shards() {
    static auto* all = [] {
        g_shards = new std::array<Shard, k_shards>(); // never destroyed: used at exit
        pthread_atfork(lock_all_shards, unlock_all_shards, unlock_all_shards);
        return g_shards;
    }();
    return *all;
}

Shard& shard_of(CURL* handle) {
    auto bits = reinterpret_cast<uintptr_t>(handle);
    return shards()[(bits >> 4 ^ bits >> 12) % k_shards];
}

// A string option as libcurl keeps it: a copy. Copied into the string already there, so that a
// program setting its URL before every transfer does not allocate each time.
void set_string(std::optional<std::string>& into, const void* text) {
    if (text == nullptr) {
        into.reset();
    } else if (into) {
        into->assign(static_cast<const char*>(text));
    } else {
        into.emplace(static_cast<const char*>(text));
    }
}

// CURLOPT_COOKIELIST's commands (libcurl compares them ignoring case).
bool is_cookielist_command(const void* text) {
    const std::string_view value(static_cast<const char*>(text));
    for (std::string_view command : {"ALL", "SESS", "FLUSH", "RELOAD"}) {
        if (iequals(value, command)) {
            return true;
        }
    }
    return false;
}

} // namespace

namespace {

// Each thread remembers the last handle it looked up and its state: a program calls setopt,
// perform and getinfo on one handle in a row (five lookups per transfer), and each lookup
// was a lock, a hash and an unlock. Replacing or erasing any handle's state bumps
// g_generation first (under its shard's lock), which makes every thread's memo stale before
// the old state can be freed. A thread that still uses a state another thread is erasing
// does so with the lock as well: libcurl forbids using a handle from two threads at once.
std::atomic<uint64_t> g_generation{1};
struct LastLookup {
    CURL* handle = nullptr;
    HandleState* state = nullptr;
    uint64_t generation = 0;
};
thread_local LastLookup t_last;

HandleState* remembered(CURL* handle) noexcept {
    const LastLookup& last = t_last;
    return last.handle == handle && last.generation == g_generation.load(std::memory_order_acquire)
               ? last.state
               : nullptr;
}

void remember(CURL* handle, HandleState* state, uint64_t generation) noexcept {
    t_last = {handle, state, generation};
}

} // namespace

HandleState& state_for(CURL* handle) {
    if (HandleState* known = remembered(handle)) {
        return *known;
    }
    Shard& shard = shard_of(handle);
    std::lock_guard lock(shard.mutex);
    auto& slot = shard.states[handle];
    if (!slot) {
        slot = std::make_unique<HandleState>();
    }
    remember(handle, slot.get(), g_generation.load(std::memory_order_acquire));
    return *slot;
}

HandleState* find_state(CURL* handle) {
    if (HandleState* known = remembered(handle)) {
        return known;
    }
    Shard& shard = shard_of(handle);
    std::lock_guard lock(shard.mutex);
    auto it = shard.states.find(handle);
    if (it == shard.states.end()) {
        return nullptr;
    }
    remember(handle, it->second.get(), g_generation.load(std::memory_order_acquire));
    return it->second.get();
}

void reset_state(CURL* handle, std::unique_ptr<HandleState> state) {
    Shard& shard = shard_of(handle);
    std::unique_ptr<HandleState> old;
    {
        std::lock_guard lock(shard.mutex);
        g_generation.fetch_add(1, std::memory_order_acq_rel);
        old = std::exchange(shard.states[handle], std::move(state));
    }
    // `old` is destroyed outside the lock.
}

void erase_state(CURL* handle) {
    Shard& shard = shard_of(handle);
    std::unique_ptr<HandleState> old;
    {
        std::lock_guard lock(shard.mutex);
        auto it = shard.states.find(handle);
        if (it == shard.states.end()) {
            return;
        }
        g_generation.fetch_add(1, std::memory_order_acq_rel);
        old = std::move(it->second);
        shard.states.erase(it);
    }
}

bool transfer_running(CURL* handle) noexcept {
    try {
        const HandleState* state = find_state(handle);
        return state != nullptr && state->tee != nullptr;
    } catch (...) {
        return false; // the registry could not even be made: no state exists
    }
}

Options after_reset(const Options& before) {
    Options fresh;
    fresh.cookie_engine = fresh.cookie_started = before.cookie_started;
    return fresh;
}

void reset_options_during_transfer(CURL* handle) {
    HandleState* state = find_state(handle);
    if (state == nullptr) {
        return;
    }
    // As a plain reset (see after_reset).
    state->options = after_reset(state->options);
    if (state->tee) {
        state->tee->dropped = true; // nothing of this transfer is stored
    }
}

OptionArg read_option_arg(CURLoption option, va_list args) {
    OptionArg arg{};
    int number = static_cast<int>(option);
    if (number < CURLOPTTYPE_OBJECTPOINT) {
        arg.number = va_arg(args, long);
    } else if (number < CURLOPTTYPE_FUNCTIONPOINT) {
        arg.pointer = va_arg(args, void*);
    } else if (number < CURLOPTTYPE_OFF_T) {
        arg.function = va_arg(args, void (*)());
    } else if (number < CURLOPTTYPE_BLOB) {
        arg.offset = va_arg(args, curl_off_t);
    } else {
        arg.pointer = va_arg(args, void*); // struct curl_blob*
    }
    return arg;
}

void record_option(Options& o, CURLoption option, OptionArg arg) {
    switch (option) {
    case CURLOPT_URL:
        set_string(o.url, arg.pointer);
        break;
    case CURLOPT_CURLU:
        o.has_curlu = arg.pointer != nullptr;
        break;
    case CURLOPT_CUSTOMREQUEST:
        set_string(o.custom_request, arg.pointer);
        break;
    case CURLOPT_NOBODY:
        o.nobody = arg.number != 0;
        if (o.nobody) {
            o.method = MethodKind::head;
        } else if (o.method == MethodKind::head) {
            o.method = MethodKind::get;
        }
        break;
    case CURLOPT_HTTPGET:
        if (arg.number != 0) {
            o.method = MethodKind::get;
            o.upload = false;
            o.nobody = false;
        }
        break;
    case CURLOPT_POST:
        if (arg.number != 0) {
            o.method = MethodKind::post;
            o.nobody = false;
        } else {
            o.method = MethodKind::get;
        }
        break;
    case CURLOPT_UPLOAD:
    case CURLOPT_PUT:
        o.upload = arg.number != 0;
        if (o.upload) {
            o.method = MethodKind::put;
            o.nobody = false;
        } else {
            o.method = MethodKind::get;
        }
        break;
    case CURLOPT_POSTFIELDS:
        o.copied_postfields.reset();
        o.postfields = static_cast<const char*>(arg.pointer);
        o.method = MethodKind::post;
        break;
    case CURLOPT_COPYPOSTFIELDS:
        if (arg.pointer == nullptr) {
            o.copied_postfields.reset();
            o.postfields = nullptr;
        } else {
            const char* text = static_cast<const char*>(arg.pointer);
            size_t size =
                o.postfieldsize < 0 ? std::strlen(text) : static_cast<size_t>(o.postfieldsize);
            o.copied_postfields.emplace(text, size);
            o.postfields = o.copied_postfields->data();
        }
        o.method = MethodKind::post;
        break;
    case CURLOPT_POSTFIELDSIZE:
    case CURLOPT_POSTFIELDSIZE_LARGE: {
        curl_off_t size = option == CURLOPT_POSTFIELDSIZE ? arg.number : arg.offset;
        // libcurl drops a copied body that is longer than a size set afterwards.
        if (o.copied_postfields && size >= 0 &&
            static_cast<size_t>(size) < o.copied_postfields->size()) {
            o.copied_postfields.reset();
            o.postfields = nullptr;
        }
        o.postfieldsize = size;
        break;
    }
    case CURLOPT_HTTPPOST:
        if (arg.pointer != nullptr) {
            o.method = MethodKind::post_form;
        }
        break;
    case CURLOPT_MIMEPOST:
        if (arg.pointer != nullptr) {
            o.method = MethodKind::post_mime;
        }
        break;
    case CURLOPT_READFUNCTION:
        o.has_readfunction = arg.function != nullptr;
        break;
    case CURLOPT_HTTPHEADER:
        o.httpheader = static_cast<const curl_slist*>(arg.pointer);
        break;
    case CURLOPT_RESOLVE:
        o.resolve = static_cast<const curl_slist*>(arg.pointer);
        break;
    case CURLOPT_CONNECT_TO:
        o.connect_to = static_cast<const curl_slist*>(arg.pointer);
        break;
    case CURLOPT_FOLLOWLOCATION:
        o.followlocation = arg.number != 0;
        break;
    case CURLOPT_MAXREDIRS:
        o.maxredirs = arg.number;
        break;
    case CURLOPT_POSTREDIR:
        o.postredir = arg.number;
        break;
    case CURLOPT_ACCEPT_ENCODING:
        set_string(o.accept_encoding, arg.pointer);
        break;
    case CURLOPT_HTTP_CONTENT_DECODING:
        o.content_decoding = arg.number != 0;
        break;
    case CURLOPT_HTTP_TRANSFER_DECODING:
        o.transfer_decoding = arg.number != 0;
        break;
    case CURLOPT_RANGE:
        set_string(o.range, arg.pointer);
        break;
    case CURLOPT_RESUME_FROM:
        o.resume_from = arg.number;
        break;
    case CURLOPT_RESUME_FROM_LARGE:
        o.resume_from = arg.offset;
        break;
    case CURLOPT_HTTP_VERSION:
        o.http_version = arg.number;
        break;
    case CURLOPT_PORT:
        o.port = arg.number;
        break;
    case CURLOPT_USERAGENT:
        set_string(o.user_agent, arg.pointer);
        break;
    case CURLOPT_REFERER:
        set_string(o.referer, arg.pointer);
        break;
    case CURLOPT_COOKIE:
        set_string(o.cookie, arg.pointer);
        break;
    case CURLOPT_REQUEST_TARGET:
        set_string(o.request_target, arg.pointer);
        break;
    case CURLOPT_UNIX_SOCKET_PATH:
    case CURLOPT_ABSTRACT_UNIX_SOCKET:
        set_string(o.unix_socket_path, arg.pointer);
        break;
    case CURLOPT_USERPWD:
        set_string(o.userpwd, arg.pointer);
        break;
    case CURLOPT_USERNAME:
        set_string(o.username, arg.pointer);
        break;
    case CURLOPT_PASSWORD:
        set_string(o.password, arg.pointer);
        break;
    case CURLOPT_XOAUTH2_BEARER:
        set_string(o.bearer, arg.pointer);
        break;
    case CURLOPT_AWS_SIGV4:
        set_string(o.aws_sigv4, arg.pointer);
        break;
    case CURLOPT_HTTPAUTH:
        o.httpauth = arg.number;
        break;
    case CURLOPT_HEADER:
        o.header = arg.number != 0;
        break;
    case CURLOPT_WRITEFUNCTION:
        o.write_fn = reinterpret_cast<curl_write_callback>(arg.function);
        break;
    case CURLOPT_WRITEDATA:
        o.write_data = arg.pointer;
        break;
    case CURLOPT_HEADERFUNCTION:
        o.header_fn = reinterpret_cast<curl_write_callback>(arg.function);
        break;
    case CURLOPT_HEADERDATA:
        o.header_data = arg.pointer;
        break;
    case CURLOPT_FAILONERROR:
        o.failonerror = arg.number != 0;
        break;
    case CURLOPT_ERRORBUFFER:
        o.errorbuffer = static_cast<char*>(arg.pointer);
        break;
    case CURLOPT_VERBOSE:
        o.verbose = arg.number != 0;
        break;
    case CURLOPT_DEBUGFUNCTION:
        o.debug_fn = reinterpret_cast<curl_debug_callback>(arg.function);
        break;
    case CURLOPT_DEBUGDATA:
        o.debug_data = arg.pointer;
        break;
    case CURLOPT_STDERR:
        o.stderr_stream = static_cast<FILE*>(arg.pointer);
        break;
    case CURLOPT_XFERINFOFUNCTION:
        o.xferinfo_fn = reinterpret_cast<curl_xferinfo_callback>(arg.function);
        break;
    case CURLOPT_XFERINFODATA:
        o.xferinfo_data = arg.pointer;
        break; // == PROGRESSDATA
    case CURLOPT_PROGRESSFUNCTION:
        o.progress_fn = reinterpret_cast<curl_progress_callback>(arg.function);
        break;
    case CURLOPT_NOPROGRESS:
        o.noprogress = arg.number != 0;
        break;
    case CURLOPT_FILETIME:
        o.filetime = arg.number != 0;
        break;
    case CURLOPT_TIMECONDITION:
        o.timecondition = arg.number;
        break;
    case CURLOPT_TIMEVALUE:
        o.timevalue = arg.number;
        break;
    case CURLOPT_TIMEVALUE_LARGE:
        o.timevalue = arg.offset;
        break;
    case CURLOPT_CONNECT_ONLY:
        o.connect_only = arg.number;
        break;
    case CURLOPT_COOKIEFILE:
        o.cookie_engine |= arg.pointer != nullptr;
        break;
    case CURLOPT_COOKIEJAR:
        o.cookie_engine |= arg.pointer != nullptr;
        o.cookie_started |= arg.pointer != nullptr;
        break;
    case CURLOPT_COOKIELIST:
        // A cookie line starts the engine; the commands only act on a jar already there.
        if (arg.pointer != nullptr && !is_cookielist_command(arg.pointer)) {
            o.cookie_engine = o.cookie_started = true;
        }
        break;
    case CURLOPT_SHARE:
        o.share = arg.pointer != nullptr;
        break;
    case CURLOPT_BUFFERSIZE:
        // libcurl clamps it to [1024, 10 MiB] and never calls the write callback with more
        // than CURL_MAX_WRITE_SIZE at once.
        o.buffersize = arg.number < 1024 ? 1024 : arg.number;
        break;
    case CURLOPT_MAXFILESIZE:
        o.maxfilesize = arg.number;
        break;
    case CURLOPT_MAXFILESIZE_LARGE:
        o.maxfilesize = arg.offset;
        break;
    default:
        break;
    }
}

} // namespace curlcache::core::easy
