#include "backends/plugin_loader.h"

#include <algorithm>
#include <cstddef>
#include <dirent.h>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <sys/stat.h>

#ifndef CURLCACHE_PLUGIN_DIR
#define CURLCACHE_PLUGIN_DIR "/usr/local/lib/curlcache/backends"
#endif

namespace curlcache::backends {

namespace {

constexpr std::string_view k_file_prefix = "libcurlcache-backend-";
constexpr std::string_view k_file_suffix = ".so";

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The folder of the shared object (or program) this code was linked into.
std::string own_folder() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&plugin_dir), &info) == 0 || info.dli_fname == nullptr) {
        return "";
    }
    const std::string file = info.dli_fname;
    const size_t slash = file.rfind('/');
    return slash == std::string::npos ? "" : file.substr(0, slash);
}

std::string dl_error() {
    const char* text = dlerror();
    return text != nullptr ? text : "unknown dlopen error";
}

// Checks what a table promises before the host relies on it.
Result<void> check_table(const curlcache_backend_plugin* table) {
    if (table == nullptr) {
        return fail("its entry point returned no table");
    }
    if (table->abi_major != CURLCACHE_BACKEND_ABI_MAJOR) {
        return fail("built for backend ABI " + std::to_string(table->abi_major) + "." +
                    std::to_string(table->abi_minor) + ", this curlcache speaks " +
                    std::to_string(CURLCACHE_BACKEND_ABI_MAJOR) + "." +
                    std::to_string(CURLCACHE_BACKEND_ABI_MINOR));
    }
    // The required operations must be there; the optional ones after them are used only
    // when the table is long enough to hold them (CURLCACHE_BACKEND_HAS).
    constexpr size_t k_minimum = offsetof(curlcache_backend_plugin, purge_expired);
    if (table->size < k_minimum) {
        return fail("its table is " + std::to_string(table->size) + " bytes, less than the " +
                    std::to_string(k_minimum) + " its required operations need");
    }
    if (table->name == nullptr || *table->name == '\0') {
        return fail("its table has no name");
    }
    if (!table->open || !table->close || !table->get || !table->put || !table->remove ||
        !table->scan || !table->clear || !table->usage) {
        return fail("its table lacks a required operation");
    }
    return {};
}

Result<const curlcache_backend_plugin*> load_uncached(const std::string& path) {
    dlerror();
    // RTLD_LOCAL: the plugin's symbols (and its client library's, if shared) stay out of
    // the program's global scope. RTLD_NOW: a missing symbol fails here, not mid-transfer.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        return fail("cannot load backend plugin " + path + ": " + dl_error());
    }
    dlerror();
    auto entry =
        reinterpret_cast<curlcache_backend_entry_fn>(dlsym(handle, CURLCACHE_BACKEND_ENTRY));
    if (entry == nullptr) {
        dlclose(handle);
        return fail("backend plugin " + path + " is not a curlcache plugin (no " +
                    CURLCACHE_BACKEND_ENTRY + ")");
    }
    const curlcache_backend_plugin* table = entry();
    if (auto ok = check_table(table); !ok) {
        dlclose(handle);
        return fail("backend plugin " + path + " cannot be used: " + ok.error().message);
    }
    return table; // never closed: see the header
}

} // namespace

std::string plugin_dir(const config::Settings& settings) {
    if (!settings.plugin_dir.empty()) {
        return settings.plugin_dir;
    }
    static const std::string dir = [] {
        const std::string beside = own_folder() + "/curlcache/backends";
        return is_dir(beside) ? beside : std::string(CURLCACHE_PLUGIN_DIR);
    }();
    return dir;
}

std::string plugin_file(std::string_view name, const config::Settings& settings) {
    if (name.starts_with(k_plugin_prefix)) {
        return std::string(name.substr(k_plugin_prefix.size()));
    }
    return plugin_dir(settings) + "/" + std::string(k_file_prefix) + std::string(name) +
           std::string(k_file_suffix);
}

Result<const curlcache_backend_plugin*> load_plugin(const std::string& path) {
    static std::mutex mutex;
    // Successes only: a plugin installed after a failed attempt is found next time.
    static auto* loaded = new std::map<std::string, const curlcache_backend_plugin*>();
    const std::lock_guard lock(mutex);
    if (auto found = loaded->find(path); found != loaded->end()) {
        return found->second;
    }
    auto table = load_uncached(path);
    if (table) {
        loaded->emplace(path, *table);
    }
    return table;
}

const curlcache_backend_curl* real_curl() {
    static const curlcache_backend_curl table = [] {
        curlcache_backend_curl t{};
        t.size = sizeof t;
        // A libcurl already in the process (the OpenSSL build, else the GnuTLS one that
        // pycurl and git use), else the OpenSSL build loaded privately. A lookup through
        // its handle searches that library and its dependencies only, never the shim.
        struct Build {
            const char* soname;
            const char* version;
        };
        constexpr Build k_builds[] = {{"libcurl.so.4", "CURL_OPENSSL_4"},
                                      {"libcurl-gnutls.so.4", "CURL_GNUTLS_3"}};
        void* lib = nullptr;
        const char* version = k_builds[0].version;
        for (const Build& build : k_builds) {
            if ((lib = dlopen(build.soname, RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD)) != nullptr) {
                version = build.version;
                break;
            }
        }
        if (lib == nullptr) {
            lib = dlopen(k_builds[0].soname, RTLD_LAZY | RTLD_LOCAL);
        }
        if (lib == nullptr) {
            return t;
        }
        auto sym = [lib, version](const char* name) {
            void* found = dlvsym(lib, name, version);
            return found != nullptr ? found : dlsym(lib, name);
        };
        auto set = [&](auto& member, const char* name) {
            member = reinterpret_cast<std::remove_reference_t<decltype(member)>>(sym(name));
        };
        set(t.easy_init, "curl_easy_init");
        set(t.easy_setopt, "curl_easy_setopt");
        set(t.easy_perform, "curl_easy_perform");
        set(t.easy_getinfo, "curl_easy_getinfo");
        set(t.easy_cleanup, "curl_easy_cleanup");
        set(t.easy_reset, "curl_easy_reset");
        set(t.easy_strerror, "curl_easy_strerror");
        set(t.slist_append, "curl_slist_append");
        set(t.slist_free_all, "curl_slist_free_all");
        return t;
    }();
    return table.easy_init != nullptr ? &table : nullptr;
}

std::vector<PluginInfo> find_plugins(const std::string& dir) {
    std::vector<PluginInfo> found;
    DIR* folder = opendir(dir.c_str());
    if (folder == nullptr) {
        return found;
    }
    while (const dirent* entry = readdir(folder)) {
        const std::string_view file = entry->d_name;
        if (file.starts_with(k_file_prefix) && file.ends_with(k_file_suffix)) {
            found.push_back(PluginInfo{dir + "/" + std::string(file), "", "", ""});
        }
    }
    closedir(folder);
    std::sort(found.begin(), found.end(),
              [](const PluginInfo& a, const PluginInfo& b) { return a.path < b.path; });
    for (PluginInfo& info : found) {
        auto table = load_plugin(info.path);
        if (!table) {
            info.error = table.error().message;
            continue;
        }
        info.name = (*table)->name;
        info.version = (*table)->version != nullptr ? (*table)->version : "";
    }
    return found;
}

} // namespace curlcache::backends
