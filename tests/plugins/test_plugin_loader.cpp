// Loading backend plugins: a missing, foreign, newer or broken plugin is refused with a
// message naming the file and the reason; an older plugin's shorter table is used with
// the host's defaults for what it lacks; settings of the plugin's config table and the
// real libcurl reach open(); bare names, tiers and `--version`'s listing find plugins.
#include "backends/plugin_loader.h"
#include "backends/registry.h"
#include "backends/tiered_storage.h"

#include <cstdlib>
#include <dlfcn.h>
#include <string>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;

std::string odd(const char* which) {
    return std::string("plugin:" ODD_DIR "/libodd_") + which + ".so";
}

std::string open_error(const std::string& name, const config::Settings& settings = {}) {
    auto opened = backends::open(name, settings);
    if (opened) {
        fail_msg("%s opened", name.c_str());
    }
    return opened.error().message;
}

void expect_contains(const std::string& text, const std::string& part) {
    if (text.find(part) == std::string::npos) {
        fail_msg("'%s' does not contain '%s'", text.c_str(), part.c_str());
    }
}

std::string folder_of(const std::string& path) {
    return path.substr(0, path.rfind('/'));
}

void test_a_missing_plugin_names_the_file_and_the_reason(void**) {
    std::string message = open_error("plugin:/nonexistent/libmine.so");
    expect_contains(message, "/nonexistent/libmine.so");
    expect_contains(message, "No such file");
    config::Settings settings;
    settings.plugin_dir = ODD_DIR;
    message = open_error("nosuch", settings);
    expect_contains(message, "unknown backend \"nosuch\": not built in (sqlite, filesystem, memory");
    expect_contains(message, "no plugin " ODD_DIR "/libcurlcache-backend-nosuch.so");
}

void test_a_library_without_the_entry_point_is_refused(void**) {
    const std::string message = open_error(odd("no_entry"));
    expect_contains(message, "libodd_no_entry.so is not a curlcache plugin");
    expect_contains(message, "curlcache_backend_plugin_entry");
}

void test_a_newer_major_abi_is_refused(void**) {
    const std::string message = open_error(odd("newer_major"));
    expect_contains(message, "libodd_newer_major.so");
    expect_contains(message, "built for backend ABI 2.0, this curlcache speaks 1.");
}

void test_a_table_without_the_required_operations_is_refused(void**) {
    expect_contains(open_error(odd("tiny_table")), "less than the");
}

// An older plugin's table ends before the optional operations: the host must not read past
// its end (the odd plugin has invalid pointers there) and uses its own defaults.
void test_a_shorter_table_works_with_the_hosts_defaults(void**) {
    auto opened = backends::open(odd("short_table"), {});
    if (!opened) {
        fail_msg("%s", opened.error().message.c_str());
    }
    backends::Storage& storage = **opened;
    assert_string_equal(std::string(storage.name()).c_str(), "odd");
    const std::string key = tests::test_key(1);
    auto stream = storage.begin_put(0); // default: collected, then put()
    assert_true(stream.has_value());
    assert_true((*stream)->append("tail").has_value());
    assert_true((*stream)->commit(tests::test_meta(key), "head-").has_value());
    auto got = storage.get(key);
    assert_true(got.has_value() && got->has_value());
    assert_string_equal((*got)->get()->c_str(), "head-tail");
    auto meta = storage.get_metadata(key); // default: unknown
    assert_true(meta.has_value() && !meta->has_value());
    auto locked = storage.try_lock(key, 1000); // default: always granted
    assert_true(locked.has_value() && *locked);
    assert_true(storage.unlock(key).has_value());
    auto purged = storage.purge_expired(1); // default: a scan, nothing expired
    assert_true(purged.has_value());
    assert_int_equal(*purged, 0);
    assert_true(storage.vacuum().has_value());
    storage.flush();
}

void test_open_gets_its_config_table_and_the_real_libcurl(void**) {
    config::Settings settings;
    settings.plugin_tables["odd"] = {{"other", "x"}, {"reason", "from the config table"}};
    settings.plugin_tables["other-plugin"] = {{"reason", "not mine"}};
    auto opened = backends::open(odd("open_fails"), settings);
    assert_false(opened.has_value());
    assert_int_equal(static_cast<int>(opened.error().kind),
                     static_cast<int>(backends::ErrorKind::timeout));
    const std::string& message = opened.error().message;
    expect_contains(message, "libodd_open_fails.so");
    expect_contains(message, "odd: from the config table; curl handed over");
}

// Resolved in libcurl itself: under the preloaded shim (test_plugin_loader_under_shim) the
// global curl_easy_init is the shim's wrapper, and a plugin must never get that.
void test_the_real_libcurl_is_libcurls_own(void**) {
    const curlcache_backend_curl* curl = backends::real_curl();
    assert_non_null(curl);
    for (void* fn : {reinterpret_cast<void*>(curl->easy_init),
                     reinterpret_cast<void*>(curl->easy_perform),
                     reinterpret_cast<void*>(curl->slist_free_all)}) {
        Dl_info info{};
        assert_true(dladdr(fn, &info) != 0);
        expect_contains(info.dli_fname, "libcurl.so.4");
    }
    // Under the shim (test_plugin_loader_under_shim) the program's own curl_easy_init is the
    // shim's wrapper: the table above must still point into libcurl.
    const char* preload = std::getenv("LD_PRELOAD");
    if (preload != nullptr && std::string(preload).find("curlcache-preload") != std::string::npos) {
        Dl_info info{};
        assert_true(dladdr(dlsym(RTLD_DEFAULT, "curl_easy_init"), &info) != 0);
        expect_contains(info.dli_fname, "curlcache-preload");
    }
    CURL* handle = curl->easy_init();
    assert_non_null(handle);
    curl->easy_cleanup(handle);
}

void test_a_bare_name_is_found_in_the_plugin_folder(void**) {
    config::Settings settings;
    settings.plugin_dir = folder_of(EXAMPLE_PLUGIN);
    settings.plugin_tables["example"] = {{"greeting", "hello"}};
    auto opened = backends::open("example", settings);
    if (!opened) {
        fail_msg("%s", opened.error().message.c_str());
    }
    assert_string_equal(std::string((*opened)->name()).c_str(), "example");
}

void test_a_plugin_is_one_tier_among_built_in_ones(void**) {
    config::Settings settings;
    settings.backend = {"memory", "plugin:" EXAMPLE_PLUGIN};
    auto opened = backends::open_tiered(settings, [](std::string_view name,
                                                     const config::Settings& tier_settings) {
        return backends::open(name, tier_settings);
    });
    if (!opened) {
        fail_msg("%s", opened.error().message.c_str());
    }
    backends::TieredStorage* tiers = backends::as_tiered(**opened);
    assert_non_null(tiers);
    assert_string_equal(std::string(tiers->tier(1).name()).c_str(), "example");
    const std::string value = "a value";
    const std::string_view piece = value;
    assert_true((*opened)->put(tests::test_meta(tests::test_key(7)), {&piece, 1}).has_value());
    auto got = tiers->tier(1).get(tests::test_key(7));
    assert_true(got.has_value() && got->has_value());
    assert_string_equal((*got)->get()->c_str(), "a value");
}

void test_find_plugins_lists_name_and_version(void**) {
    bool seen = false;
    for (const auto& plugin : backends::find_plugins(folder_of(EXAMPLE_PLUGIN))) {
        if (plugin.path == EXAMPLE_PLUGIN) {
            assert_string_equal(plugin.name.c_str(), "example");
            assert_string_equal(plugin.version.c_str(), "1.0.0");
            assert_true(plugin.error.empty());
            seen = true;
        }
    }
    assert_true(seen);
}

} // namespace

int main() {
    // The shared back-off's markers (backends/backoff.h; odd_open_fails times out) in a
    // folder of this run's own: runs with and without the shim must not see each other's.
    const std::string cache_home = tests::make_scratch();
    setenv("XDG_CACHE_HOME", cache_home.c_str(), 1);
    const CMUnitTest tests[] = {
        cmocka_unit_test(test_a_missing_plugin_names_the_file_and_the_reason),
        cmocka_unit_test(test_a_library_without_the_entry_point_is_refused),
        cmocka_unit_test(test_a_newer_major_abi_is_refused),
        cmocka_unit_test(test_a_table_without_the_required_operations_is_refused),
        cmocka_unit_test(test_a_shorter_table_works_with_the_hosts_defaults),
        cmocka_unit_test(test_open_gets_its_config_table_and_the_real_libcurl),
        cmocka_unit_test(test_the_real_libcurl_is_libcurls_own),
        cmocka_unit_test(test_a_bare_name_is_found_in_the_plugin_folder),
        cmocka_unit_test(test_a_plugin_is_one_tier_among_built_in_ones),
        cmocka_unit_test(test_find_plugins_lists_name_and_version),
    };
    const int failed = cmocka_run_group_tests_name("plugin loader", tests, nullptr, nullptr);
    tests::remove_scratch(cache_home);
    return failed;
}
