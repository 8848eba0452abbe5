// The cache key and URL normalisation.
//
// The URL parser is a deliberately small one (scheme://userinfo@host:port/path?query#frag)
// rather than libcurl's curl_url: the engine must not link libcurl (core/CMakeLists.txt).
// It only ever rewrites the parts it understands and keeps everything else byte for byte,
// so an odd URL at worst gets a key of its own; it never merges two different URLs.
#include "core/key.h"

#include "base/per_thread.h"

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
// XXH3 through libxxhash's runtime dispatch: the AVX2/AVX-512 code where the CPU has it
// (Debian builds the library for baseline x86-64, SSE2). A 1 MiB hit spent half its time
// in the SSE2 checksum.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

namespace curlcache::core {

namespace {

// Salt for credential digests: a fixed project string plus the cache's backend and name,
// so that two caches never hold the same digest for the same secret.
constexpr std::string_view k_credentials_salt = "curlcache credentials digest v1";

struct Url {
    std::string scheme;               // lower-case, without "://"
    std::string userinfo;             // "user:pass" or ""
    std::string host;                 // lower-case (IPv6 keeps its brackets)
    std::string port;                 // digits without leading zeros, or "" (default port)
    std::string path;                 // "/" at least
    std::optional<std::string> query; // without '?'
};

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

bool is_scheme_char(char c, bool first) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
        return true;
    }
    return !first && (std::isdigit(u) || c == '+' || c == '-' || c == '.');
}

// "%2f" -> "%2F": both spell the same octet. Nothing is decoded.
std::string upper_percent_escapes(std::string_view text) {
    std::string out(text);
    for (size_t i = 0; i + 2 < out.size(); ++i) {
        if (out[i] == '%' && std::isxdigit(static_cast<unsigned char>(out[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(out[i + 2]))) {
            out[i + 1] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[i + 1])));
            out[i + 2] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[i + 2])));
            i += 2;
        }
    }
    return out;
}

// RFC 3986 section 5.2.4, as libcurl applies it before sending ("/a/./b/../c" -> "/a/c").
std::string remove_dot_segments(std::string_view input) {
    std::vector<std::string_view> segments;
    size_t at = 1; // input starts with '/'
    bool trailing_slash = false;
    while (at <= input.size()) {
        size_t end = input.find('/', at);
        if (end == std::string_view::npos) {
            end = input.size();
        }
        std::string_view segment = input.substr(at, end - at);
        bool last = end == input.size();
        if (segment == ".") {
            trailing_slash = last;
        } else if (segment == "..") {
            if (!segments.empty()) {
                segments.pop_back();
            }
            trailing_slash = last;
        } else {
            segments.push_back(segment);
            trailing_slash = false;
        }
        at = end + 1;
    }
    std::string out;
    for (std::string_view segment : segments) {
        out += '/';
        out += segment;
    }
    if (trailing_slash || out.empty()) {
        out += '/';
    }
    return out;
}

uint16_t default_port(std::string_view scheme) {
    if (scheme == "http" || scheme == "ws") {
        return 80;
    }
    if (scheme == "https" || scheme == "wss") {
        return 443;
    }
    return 0;
}

// A URL cut into its scheme (empty when it has none), authority and the rest (path and
// query), without the fragment.
struct Split {
    std::string_view scheme, authority, rest;
};

Split split(std::string_view text) {
    Split parts;
    if (size_t hash = text.find('#'); hash != std::string_view::npos) {
        text = text.substr(0, hash);
    }
    // Scheme: "[alpha][alnum+-.]*://"; a URL without one is http, as curl guesses.
    size_t colon = text.find("://");
    bool has_scheme = colon != std::string_view::npos && colon > 0;
    for (size_t i = 0; has_scheme && i < colon; ++i) {
        has_scheme = is_scheme_char(text[i], i == 0);
    }
    if (has_scheme) {
        parts.scheme = text.substr(0, colon);
        text.remove_prefix(colon + 3);
    }
    size_t authority_end = text.find_first_of("/?");
    parts.authority = text.substr(0, authority_end);
    parts.rest =
        authority_end == std::string_view::npos ? std::string_view{} : text.substr(authority_end);
    return parts;
}

Url parse(std::string_view whole) {
    Url url;
    Split parts = split(whole);
    url.scheme = parts.scheme.empty() ? std::string("http") : lower(parts.scheme);
    std::string_view authority = parts.authority;
    std::string_view text = parts.rest;
    if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
        url.userinfo = std::string(authority.substr(0, at));
        authority.remove_prefix(at + 1);
    }
    // Port: after the first ':' that is not inside an IPv6 literal's brackets (so the host
    // itself never holds a ':' and a second parse finds the same split).
    size_t bracket = authority.rfind(']');
    size_t port_colon = authority.find(':', bracket == std::string_view::npos ? 0 : bracket);
    if (port_colon != std::string_view::npos) {
        std::string_view port = authority.substr(port_colon + 1);
        authority = authority.substr(0, port_colon);
        bool digits =
            std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) {
            while (port.size() > 1 && port.front() == '0') {
                port.remove_prefix(1);
            }
            bool is_default = port.empty() || (port.size() <= 5 && std::stoul(std::string(port)) ==
                                                                       default_port(url.scheme));
            url.port = is_default ? std::string() : std::string(port);
        } else {
            url.port = std::string(port); // not a number: kept verbatim, never merged
        }
    }
    url.host = lower(authority);
    size_t question = text.find('?');
    std::string_view path = text.substr(0, question);
    if (question != std::string_view::npos) {
        url.query = upper_percent_escapes(text.substr(question + 1));
    }
    url.path = path.empty() ? std::string("/") : remove_dot_segments(upper_percent_escapes(path));
    return url;
}

std::vector<std::string_view> split_query(std::string_view query) {
    std::vector<std::string_view> params;
    size_t at = 0;
    while (at <= query.size()) {
        size_t end = query.find('&', at);
        if (end == std::string_view::npos) {
            end = query.size();
        }
        if (end > at) { // "a=1&&b=2": empty parameters carry nothing
            params.push_back(query.substr(at, end - at));
        }
        at = end + 1;
    }
    return params;
}

std::string_view param_name(std::string_view param) {
    return param.substr(0, param.find('='));
}

bool ignored(std::string_view name, const config::Settings& settings) {
    return std::find(settings.ignored_parameters.begin(), settings.ignored_parameters.end(),
                     name) != settings.ignored_parameters.end();
}

// Rebuilds a URL without userinfo, fragment and ignored parameters (name and value: README
// promises they are left out of the stored URL, and a name alone can say too much).
std::string build(const Url& url, const config::Settings& settings) {
    std::string out = url.scheme + "://" + url.host;
    if (!url.port.empty()) {
        out += ':';
        out += url.port;
    }
    out += url.path;
    if (!url.query) {
        return out;
    }
    std::vector<std::string> kept;
    for (std::string_view param : split_query(*url.query)) {
        std::string_view name = param_name(param);
        if (!ignored(name, settings)) {
            kept.emplace_back(param);
        }
    }
    if (settings.sort_query) {
        std::stable_sort(kept.begin(), kept.end(), [](const std::string& a, const std::string& b) {
            return param_name(a) < param_name(b);
        });
    }
    if (kept.empty()) {
        return out;
    }
    out += '?';
    for (size_t i = 0; i < kept.size(); ++i) {
        if (i > 0) {
            out += '&';
        }
        out += kept[i];
    }
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.remove_suffix(1);
    }
    return text;
}

std::string upper(std::string text) {
    for (char& c : text) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return text;
}

// The canonical encoding is written into a buffer and hashed in one XXH3-128 call (the same
// digest as feeding the pieces to a hash state: a key was ~15 small state updates, ~1,000
// instructions). A field larger than k_inline_field (a large POST body) is not copied: the
// buffer so far and the field go to a hash state instead, which gives the same digest.
// Each thread keeps its buffers; `nested` gives a second one for a key computed while this
// thread's first is in use (the credentials digest).
constexpr size_t k_inline_field = size_t{64} << 10;

struct KeyBuffers {
    std::string outer;
    std::string inner;
};

std::string& reset_buffer(bool nested) {
    KeyBuffers* buffers = base::per_thread<KeyBuffers>(); // see base/per_thread.h
    if (buffers == nullptr) {
        throw std::bad_alloc();
    }
    std::string& buffer = nested ? buffers->inner : buffers->outer;
    if (buffer.capacity() > 4 * k_inline_field) {
        std::string().swap(buffer); // an unusually large key's buffer is not kept for the thread
    }
    buffer.clear();
    return buffer;
}

// The canonical encoding: every field is a one-byte tag, its length as 8 little-endian
// bytes, then its bytes. Nothing can run into the next field.
class Encoder {
  public:
    explicit Encoder(bool nested = false) : m_out(reset_buffer(nested)) {}
    ~Encoder() { XXH3_freeState(m_state); }
    Encoder(const Encoder&) = delete;
    Encoder& operator=(const Encoder&) = delete;

    void field(char tag, std::string_view bytes) {
        char head[9];
        head[0] = tag;
        uint64_t size = bytes.size();
        for (int i = 0; i < 8; ++i) {
            head[1 + i] = static_cast<char>(size >> (8 * i));
        }
        m_out.append(head, sizeof head);
        if (bytes.size() > k_inline_field) {
            stream(bytes);
        } else {
            m_out.append(bytes);
        }
    }

    // field(tag, bytes) of the bytes in upper case (the method), without a copy of them.
    void upper_field(char tag, std::string_view bytes) {
        if (bytes.size() > k_inline_field) { // streamed where it lies: upper-cased first
            field(tag, upper(std::string(bytes)));
            return;
        }
        const size_t at = m_out.size() + 9;
        field(tag, bytes);
        for (size_t i = at; i < m_out.size(); ++i) {
            m_out[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(m_out[i])));
        }
    }

    void number(char tag, uint64_t value) {
        char bytes[8];
        for (int i = 0; i < 8; ++i) {
            bytes[i] = static_cast<char>(value >> (8 * i));
        }
        field(tag, std::string_view(bytes, sizeof bytes));
    }

    XXH128_hash_t digest() {
        if (!m_state) {
            return XXH3_128bits(m_out.data(), m_out.size());
        }
        XXH3_128bits_update(m_state, m_out.data(), m_out.size());
        m_out.clear();
        return XXH3_128bits_digest(m_state);
    }

  private:
    // Hashes what the buffer holds, then `bytes` where they lie.
    void stream(std::string_view bytes) {
        if (!m_state) {
            m_state = XXH3_createState();
            if (!m_state) {
                throw std::bad_alloc();
            }
            XXH3_128bits_reset(m_state);
        }
        XXH3_128bits_update(m_state, m_out.data(), m_out.size());
        XXH3_128bits_update(m_state, bytes.data(), bytes.size());
        m_out.clear();
    }

    std::string& m_out;
    XXH3_state_t* m_state = nullptr;
};

// Does the request carry credentials (which enter the key as credentials_digest())?
bool has_credentials(const Request& request, std::string_view from_url) {
    return !request.credentials.empty() || !from_url.empty() ||
           std::any_of(request.options.begin(), request.options.end(),
                       [](const auto& option) { return option.first == "credentials"; });
}

std::string credentials_digest(const Request& request, const config::Settings& settings,
                               std::string_view from_url) {
    if (!has_credentials(request, from_url)) {
        return {};
    }
    Encoder encoder(true);
    encoder.field('s', k_credentials_salt);
    encoder.field('b', settings.backend.empty() ? std::string_view{} : settings.backend.front());
    encoder.field('n', settings.name);
    encoder.field('c', request.credentials);
    encoder.field('u', from_url);
    for (const auto& [name, value] : request.options) {
        if (name == "credentials") {
            encoder.field('o', value);
        }
    }
    XXH128_hash_t hash = encoder.digest();
    char out[16];
    std::memcpy(out, &hash.high64, 8);
    std::memcpy(out + 8, &hash.low64, 8);
    return std::string(out, sizeof out);
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Matched request headers: names compared case-insensitively, sorted, values trimmed.
Pairs matched_headers(const Request& request, const config::Settings& settings) {
    if (settings.match_headers.empty() || request.headers.empty()) {
        return {}; // nothing to match: no allocation
    }
    std::vector<std::string> wanted;
    for (const std::string& name : settings.match_headers) {
        wanted.push_back(lower(trim(name)));
    }
    Pairs headers;
    for (const std::string& line : request.headers) {
        size_t colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        std::string name = lower(trim(std::string_view(line).substr(0, colon)));
        if (std::find(wanted.begin(), wanted.end(), name) != wanted.end()) {
            headers.emplace_back(name, std::string(trim(std::string_view(line).substr(colon + 1))));
        }
    }
    std::stable_sort(headers.begin(), headers.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    return headers;
}

// The options in the key, sorted. An option named "credentials" only enters the key
// through the salted digest.
Pairs key_options(const Request& request) {
    Pairs options;
    for (const auto& option : request.options) {
        if (option.first != "credentials") {
            options.push_back(option);
        }
    }
    std::sort(options.begin(), options.end());
    return options;
}

void add_part(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    out += '\t';
    for (char c : value) {
        out += c == '\n' || c == '\t' ? ' ' : c;
    }
    out += '\n';
}

// Are `options` (a request's, in its order) the `kept` ones (the same without "credentials")?
bool same_options(const Pairs& kept, const Pairs& options) {
    size_t at = 0;
    for (const auto& option : options) {
        if (option.first == "credentials") {
            continue;
        }
        if (at == kept.size() || kept[at] != option) {
            return false;
        }
        ++at;
    }
    return at == kept.size();
}

// The canonical encoding of a request, hashed. The options are sorted as key_options()
// sorts them, through pointers (no copies of their strings).
Key encode_key(const Request& request, std::string_view url, const Pairs& headers,
               std::string_view credentials) {
    using Pair = std::pair<std::string, std::string>;
    constexpr size_t k_few = 16;
    std::array<const Pair*, k_few> few;
    std::vector<const Pair*> many;
    const Pair** options = few.data();
    size_t count = 0;
    if (request.options.size() > k_few) {
        many.resize(request.options.size());
        options = many.data();
    }
    for (const Pair& option : request.options) {
        if (option.first != "credentials") {
            options[count++] = &option;
        }
    }
    std::sort(options, options + count, [](const Pair* a, const Pair* b) { return *a < *b; });

    Encoder encoder;
    encoder.number('v', k_key_format_version);
    encoder.upper_field('m', request.method);
    encoder.field('u', url);
    encoder.field('b', request.body);
    encoder.number('H', headers.size());
    for (const auto& [name, value] : headers) {
        encoder.field('h', name);
        encoder.field('=', value);
    }
    encoder.number('O', count);
    for (size_t i = 0; i < count; ++i) {
        encoder.field('o', options[i]->first);
        encoder.field('=', options[i]->second);
    }
    encoder.field('c', credentials);
    XXH128_hash_t hash = encoder.digest();
    return Key{hash.high64, hash.low64};
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace

namespace {

// The two hex digits of each byte value: a key's 32 digits are 16 look-ups.
constexpr std::array<char, 512> k_hex_pairs = [] {
    constexpr char digits[] = "0123456789abcdef";
    std::array<char, 512> pairs{};
    for (size_t i = 0; i < 256; ++i) {
        pairs[2 * i] = digits[i >> 4];
        pairs[2 * i + 1] = digits[i & 0xf];
    }
    return pairs;
}();

} // namespace

std::array<char, 32> Key::hex_digits() const {
    std::array<char, 32> out;
    for (int i = 0; i < 8; ++i) {
        const int shift = 56 - 8 * i;
        std::memcpy(&out[2 * i], &k_hex_pairs[2 * ((high >> shift) & 0xff)], 2);
        std::memcpy(&out[16 + 2 * i], &k_hex_pairs[2 * ((low >> shift) & 0xff)], 2);
    }
    return out;
}

std::string Key::hex() const {
    const std::array<char, 32> digits = hex_digits();
    return std::string(digits.data(), digits.size());
}

std::optional<Key> Key::from_hex(std::string_view hex) {
    if (hex.size() != 32) {
        return std::nullopt;
    }
    Key key;
    for (size_t i = 0; i < 32; ++i) {
        int v = hex_value(hex[i]);
        if (v < 0) {
            return std::nullopt;
        }
        uint64_t& half = i < 16 ? key.high : key.low;
        half = (half << 4) | static_cast<uint64_t>(v);
    }
    return key;
}

std::string normalize_url(std::string_view url, const config::Settings& settings) {
    return build(parse(url), settings);
}

std::string redact_url(std::string_view url, const config::Settings& settings) {
    return build(parse(url), settings);
}

std::string url_credentials(std::string_view url) {
    // The userinfo as parse() finds it, without normalising the rest (once per request).
    std::string_view authority = split(url).authority;
    size_t at = authority.rfind('@');
    return at == std::string_view::npos ? std::string() : std::string(authority.substr(0, at));
}

UrlParts url_parts(std::string_view url, const config::Settings& settings) {
    Url parsed = parse(url); // once: the normalised URL and its userinfo
    UrlParts parts;
    parts.normalized = build(parsed, settings);
    parts.userinfo = std::move(parsed.userinfo);
    return parts;
}

Key make_key(const Request& request, const config::Settings& settings) {
    return make_key(request, settings, url_parts(request.url, settings));
}

Key make_key(const Request& request, const config::Settings& settings, const UrlParts& url) {
    return encode_key(request, url.normalized, matched_headers(request, settings),
                      credentials_digest(request, settings, url.userinfo));
}

Key make_key(const Request& request, const config::Settings& settings, const UrlParts& url,
             KeyMemo& memo) {
    const bool keep = request.body.size() <= k_inline_field;
    const bool same = memo.valid && keep && memo.method == request.method &&
                      memo.url == url.normalized && memo.body == request.body &&
                      same_options(memo.options, request.options);
    // The parts that depend on the settings are worked out now, and only when there is
    // anything to work on (no matched headers without match_headers or header lines, no
    // digest without credentials).
    const bool any_headers = !settings.match_headers.empty() && !request.headers.empty();
    const bool any_credentials = has_credentials(request, url.userinfo);
    if (same && !any_headers && !any_credentials && memo.headers.empty() &&
        memo.credentials.empty()) {
        return memo.key;
    }
    Pairs headers = any_headers ? matched_headers(request, settings) : Pairs();
    std::string credentials =
        any_credentials ? credentials_digest(request, settings, url.userinfo) : std::string();
    if (same && memo.headers == headers && memo.credentials == credentials) {
        return memo.key;
    }
    memo.valid = false; // until it holds all of this request's material
    const Key key = encode_key(request, url.normalized, headers, credentials);
    if (keep) {
        memo.method = request.method;
        memo.url = url.normalized;
        memo.body = request.body;
        memo.headers = std::move(headers);
        memo.options.clear();
        for (const auto& option : request.options) {
            if (option.first != "credentials") {
                memo.options.push_back(option);
            }
        }
        memo.credentials = std::move(credentials);
        memo.key = key;
        memo.valid = true;
    }
    return key;
}

std::string key_parts(const Request& request, const config::Settings& settings) {
    std::string out;
    add_part(out, "method", upper(request.method));
    for (const auto& [name, value] : matched_headers(request, settings)) {
        add_part(out, "header " + name, value);
    }
    for (const auto& [name, value] : key_options(request)) {
        // Accept, Accept-Encoding, ... enter every key as options "header:NAME".
        add_part(out, name.starts_with("header:") ? "header " + name.substr(7) : "option " + name,
                 value);
    }
    if (!request.body.empty()) {
        char digest[17];
        std::snprintf(
            digest, sizeof digest, "%016llx",
            static_cast<unsigned long long>(XXH3_64bits(request.body.data(), request.body.size())));
        add_part(out, "body", std::to_string(request.body.size()) + " bytes, XXH3 " + digest);
    }
    if (!credentials_digest(request, settings, url_credentials(request.url)).empty()) {
        add_part(out, "credentials", "yes");
    }
    return out;
}

bool key_covers_header(std::string_view name, const config::Settings& settings) {
    if (name == "accept" || name == "accept-encoding" || name == "accept-language" ||
        name == "host") {
        return true;
    }
    return std::any_of(settings.match_headers.begin(), settings.match_headers.end(),
                       [&](const std::string& header) { return lower(trim(header)) == name; });
}

Key variant_key(const Key& key, std::string_view variant) {
    Encoder encoder;
    encoder.number('v', k_key_format_version);
    encoder.field('k', key.hex());
    encoder.field('V', variant);
    XXH128_hash_t hash = encoder.digest();
    return Key{hash.high64, hash.low64};
}

} // namespace curlcache::core
