// What the engine knows about one CURL handle: the options the program set (recorded as
// libcurl records them), the state of the transfer in progress (tee buffers on a miss) and
// what the last transfer was (live, or replayed from an entry) so that getinfo and
// curl_easy_header can be answered. A handle is used by one thread at a time (libcurl's
// rule), so a state needs no lock of its own; the registry that maps handles to states does.
#pragma once

#include "core/cache.h"
#include "core/coalesce.h"
#include "core/entry.h"
#include "core/key.h"

#include <curl/curl.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace curlcache::core::easy {

// libcurl's own notion of the request method, changed by NOBODY/POST/HTTPGET/UPLOAD/...
enum class MethodKind : uint8_t { get, post, post_form, post_mime, put, head };

// Options as libcurl holds them after the program's setopt calls. Strings are copied (as
// libcurl copies them); pointers the program owns (HTTPHEADER, POSTFIELDS) are kept as
// pointers and only read at perform time.
struct Options {
    // An option could not be recorded (out of memory): what libcurl holds is no longer
    // known, so every transfer of this handle passes through until reset.
    bool unknown = false;
    std::optional<std::string> url;
    std::optional<std::string> custom_request;
    MethodKind method = MethodKind::get;
    bool nobody = false;
    bool upload = false;
    const char* postfields = nullptr; // POSTFIELDS (program-owned) or copied_postfields
    std::optional<std::string> copied_postfields;
    curl_off_t postfieldsize = -1;
    const curl_slist* httpheader = nullptr; // program-owned, read at perform time only
    const curl_slist* resolve = nullptr;    // idem (RESOLVE), changes which server answers
    const curl_slist* connect_to = nullptr; // idem (CONNECT_TO)
    bool followlocation = false;
    long maxredirs = -1;
    long postredir = 0;
    std::optional<std::string> accept_encoding;
    bool content_decoding = true;
    bool transfer_decoding = true;
    std::optional<std::string> range;
    curl_off_t resume_from = 0;
    long http_version = 0;
    long port = 0;
    std::optional<std::string> user_agent;
    std::optional<std::string> referer;
    std::optional<std::string> cookie;
    std::optional<std::string> request_target;
    std::optional<std::string> unix_socket_path;
    std::optional<std::string> userpwd, username, password, bearer, aws_sigv4;
    long httpauth = CURLAUTH_BASIC;
    bool header = false;                    // CURLOPT_HEADER
    curl_write_callback write_fn = nullptr; // nullptr = libcurl's fwrite
    void* write_data = stdout;
    curl_write_callback header_fn = nullptr;
    void* header_data = nullptr;
    bool failonerror = false;
    char* errorbuffer = nullptr;
    bool verbose = false;                   // CURLOPT_VERBOSE: a hit shows its headers too
    curl_debug_callback debug_fn = nullptr; // nullptr = libcurl's own lines on STDERR
    void* debug_data = nullptr;
    FILE* stderr_stream = nullptr; // CURLOPT_STDERR; nullptr = stderr
    curl_xferinfo_callback xferinfo_fn = nullptr;
    void* xferinfo_data = nullptr;
    curl_progress_callback progress_fn = nullptr; // XFERINFODATA == PROGRESSDATA
    bool noprogress = true;
    bool filetime = false;
    long timecondition = CURL_TIMECOND_NONE;
    curl_off_t timevalue = 0;
    long connect_only = 0;
    curl_off_t maxfilesize = 0;
    long buffersize = CURL_MAX_WRITE_SIZE; // write callback calls are never larger
    bool cookie_engine = false;            // COOKIEFILE/COOKIEJAR/COOKIELIST set
    // libcurl's cookie engine exists now: COOKIEJAR and a COOKIELIST cookie line start it at
    // once, COOKIEFILE at the next transfer. curl_easy_reset keeps a started engine (and
    // drops a COOKIEFILE not yet loaded): measured on libcurl 7.88.1.
    bool cookie_started = false;
    bool share = false; // a SHARE handle (its cookie jar is used only with the engine on)
    bool has_readfunction = false;
    bool has_curlu = false; // URL given as a CURLU handle: not modelled
};

// One header line as curl_easy_header() reports it.
struct StoredHeader {
    std::string name;
    std::string value;
    unsigned int origin = CURLH_HEADER;
    int request = 0;
};

// What a replayed transfer delivers and what getinfo answers for it.
struct Replay {
    Replay() = default;
    explicit Replay(Entry&& from) : entry(std::move(from)) {} // built around its entry
    enum class Kind : uint8_t { full, not_modified, partial, offline_miss };
    Kind kind = Kind::full;
    Entry entry; // keeps blocks, body and info texts alive
    // Header blocks to deliver: views of entry.header_blocks, the last one possibly of
    // `synthesised` (a 304 or 206 made from the stored block).
    std::vector<std::string_view> blocks;
    std::string synthesised;
    std::string note;          // why the cache answered ("HIT fresh (...)"), for VERBOSE
    std::string_view body;     // body bytes to deliver (when the body is in memory)
    // A body left in storage (Entry::stored_body): the bytes [stored_first, +stored_length)
    // of it are delivered, each chunk read and checked just before its bytes are.
    std::shared_ptr<StoredBody> stored; // released once delivered
    bool streamed = false;              // the body is (or was) `stored`
    uint64_t stored_first = 0;
    uint64_t stored_length = 0;
    uint64_t body_size() const { return streamed ? stored_length : body.size(); }
    // Delivery in pieces (replay_some): where it stands.
    enum class Step : uint8_t { start, body, done };
    Step step = Step::start;
    uint64_t body_done = 0;            // body bytes delivered
    std::string chunk;                 // the stored chunk being delivered
    size_t chunk_index = static_cast<size_t>(-1);
    double busy_time = 0;              // seconds spent delivering so far
    std::string_view trailers; // trailer lines, to the header callback after the body
    long status = 0;
    bool deliver_body = true;
    bool fail_http = false; // FAILONERROR with status >= 400
    bool condition_unmet = false;
    int64_t header_size = 0;
    double total_time = 0; // seconds, measured over the replay
    // A callback refused a header line: libcurl's counters then stop where it stopped.
    bool aborted_in_headers = false;
    size_t aborted_block = 0;
    int64_t header_done = 0;  // header bytes accepted before the abort
    std::string request_url;  // for the URL of the hop that was aborted
    std::string hop_url;      // built on demand
    std::string derived_text; // an info derived from the header blocks (see getinfo.cpp)
    std::map<uint32_t, std::string> info_texts; // recorded texts handed out, NUL-terminated
    std::string effective_method;
    std::string effective_url; // offline_miss: the request URL
    int64_t filetime = -1;
    // Recorded facts every hit asks for, found by prepare_hit in one pass (entry.infos).
    const Info* size_download = nullptr;  // CURLINFO_SIZE_DOWNLOAD_T
    const Info* content_length = nullptr; // CURLINFO_CONTENT_LENGTH_DOWNLOAD_T
    uint64_t time_saved_ms = 0;           // what the recorded transfer took
    // curl_easy_header() view, built on first use; the curl_header structs it hands out
    // stay valid until the next transfer or cleanup, as libcurl's do.
    std::optional<std::vector<StoredHeader>> header_store;
    int last_request = 0;
    curl_header header_out[2]{};
};

// The live transfer of a miss: the header blocks are copied as they arrive and the body
// goes into the storage (a BodySink) once the program has accepted each piece of it.
struct Tee {
    Key key;
    uint64_t max_entry_size = 0;
    std::vector<std::string> blocks;
    uint64_t header_bytes = 0;      // the size of `blocks`
    Cache* cache = nullptr;         // the process cache the sink writes to
    std::unique_ptr<BodySink> sink; // from the first body byte (at the end for an empty body)
    // CURLOPT_HEADER: bytes the write callback accepted that may be a header line (libcurl
    // hands each header line to the write callback just before the header callback); they
    // are dropped when the header callback gets the same bytes, else they were body.
    std::string held;
    bool body_seen = false; // body bytes of the final response were kept
    std::string trailers;   // header lines after the body (chunked trailers)
    bool in_body = false;
    bool dropped = false;        // the copy was given up: nothing of this transfer is stored
    bool header_to_body = false; // CURLOPT_HEADER: header lines reach write_fn too
    // Revalidation of a stale entry: the response is held back until its status is known; a
    // 304 is then answered by replaying `stale`.
    std::optional<Entry> stale;
    bool revalidating = false;
    bool got_304 = false;
    // stale-if-error: `stale` may stand in for a 5xx (held back like a 304) or for a
    // transfer that failed before anything reached the program.
    bool stale_on_error = false;
    bool got_error = false;   // a 5xx is being held back
    bool forwarded = false;   // something of this transfer reached the program
    bool had_entry = false;   // a stale entry was found (end_transfer logs the outcome)
    int64_t request_time = 0; // when the request went out (unix seconds)
    // The request facts a store needs (Cache::StoreContext).
    std::vector<std::string> request_lines;
    std::string key_parts; // core::key_parts() of the request, recorded with the entry
    std::optional<http::CacheControl> request_cc;
    bool authorization = false;
    bool httpheader_set = false; // the program set HTTPHEADER during the miss
    // Our copy of HTTPHEADER plus the validators, set on the real handle while revalidating.
    std::vector<std::string> added_lines;
    std::vector<curl_slist> added_list;
    std::string method;
    std::string url;
    // Request coalescing: held while this process downloads the entry others wait for;
    // released once it is stored (or the transfer failed).
    MissLock lock;
};

// The key parts of the URL of the handle's last transfer (core::url_parts), kept for the
// next transfer with the same URL under the same settings: a program that fetches one URL
// again and again does not parse it each time.
struct UrlMemo {
    bool valid = false;
    std::string url;
    std::vector<std::string> ignored_parameters; // the settings that shape `parts`
    bool sort_query = false;
    UrlParts parts;
    // The room of the last plan's copy of the URL (Request::url), handed back when the
    // transfer's decision is made, so that the next plan copies into it (no allocation).
    std::string plan_url;
};

// The parts of `url`, from the memo when it holds them, else worked out and kept there.
const UrlParts& remembered_url_parts(UrlMemo& memo, std::string_view url,
                                     const config::Settings& settings);

struct HandleState {
    Options options;
    UrlMemo url_memo;
    // The key of the last transfer and its material (core/key.h): a transfer that repeats
    // the request does not encode and hash it again. Compared by value at every transfer,
    // never trusted because no setopt happened (POSTFIELDS and HTTPHEADER are the program's
    // memory, which it may rewrite in place).
    KeyMemo key_memo;
    enum class Last : uint8_t { none, live, replayed };
    Last last = Last::none;
    std::optional<Replay> replay; // when last == replayed (or a hit is pending); in place
    // The last replay's block list and request URL, emptied: the next hit fills them again
    // rather than allocating (begin_transfer keeps them, prepare_hit takes them).
    std::vector<std::string_view> spare_blocks;
    std::string spare_url;
    std::unique_ptr<Tee> tee;       // while a miss is in progress
    // An unsafe method (POST, PUT, DELETE, ...) is running: its non-error response
    // invalidates what is stored for its URL (end_transfer does it).
    bool invalidate_pending = false;
};

// The options of a handle after curl_easy_reset: all defaults, but a cookie engine that
// had started keeps running (test_shim_share_cookies compares it with libcurl 7.88.1).
Options after_reset(const Options& before);

// The registry. state_for() creates a fresh state for a handle it has not seen (a handle
// made before the engine was in the path, or by a path that bypassed easy_init).
HandleState& state_for(CURL* handle);
HandleState* find_state(CURL* handle);
void reset_state(CURL* handle, std::unique_ptr<HandleState> state); // replace or insert
void erase_state(CURL* handle);
// True while a miss runs on the handle: its callbacks are teed through its state, which
// must then not be replaced or erased from under them.
bool transfer_running(CURL* handle) noexcept;
// curl_easy_reset of a handle whose transfer the engine is running, from the program's own
// callback (libcurl lets that transfer go on with the default options): the recorded
// options go back to the defaults at once, as libcurl's do, while the state the engine's
// frames are using stays; a miss's copy is given up, since libcurl no longer hands the
// rest of the response to the engine.
void reset_options_during_transfer(CURL* handle);

// The one argument of a curl_easy_setopt call, read from the va_list by the option's type.
union OptionArg {
    long number;
    void* pointer;
    void (*function)();
    curl_off_t offset;
};
OptionArg read_option_arg(CURLoption option, va_list args);

// Records the effect of one setopt on `options` (as libcurl would apply it).
void record_option(Options& options, CURLoption option, OptionArg arg);

} // namespace curlcache::core::easy
