// config/: what keeps a broken or hostile config file from crashing, hanging or slowing the
// program the shim is loaded into: nesting and size limits checked before toml11 sees the
// text (size, line length, nesting), regular files only, and loading time linear in the
// number of keys.
// (The rest of the loader's tests are in test_loader.cpp.)
#include "config/loader.h"
#include "config/toml_limits.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <time.h>

// cmocka last: its macros (fail, ...) would clash with the standard library's names.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}

using namespace curlcache::config;

namespace {

std::string repeat(std::string_view text, size_t times) {
    std::string out;
    out.reserve(text.size() * times);
    for (size_t i = 0; i < times; ++i) {
        out += text;
    }
    return out;
}

int make_scratch(void** state) {
    char scratch[] = "/tmp/curlcache-limits-XXXXXX";
    if (mkdtemp(scratch) == nullptr) {
        return -1;
    }
    *state = new std::string(scratch);
    return 0;
}

int remove_scratch(void** state) {
    auto* dir = static_cast<std::string*>(*state);
    std::filesystem::remove_all(*dir);
    delete dir;
    return 0;
}

// Writes `text` to <scratch>/name and returns the path.
std::string write(void** state, const std::string& name, const std::string& text) {
    const std::string path = *static_cast<std::string*>(*state) + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
}

std::string load_file_error(const std::string& path) {
    auto loaded = load_file(path);
    if (loaded) {
        fail_msg("%s loaded where an error was expected", path.c_str());
    }
    return loaded.error().message;
}

void expect_text(const std::string& actual, const std::string& expected) {
    if (actual != expected) {
        fail_msg("\n  got:      %s\n  expected: %s", actual.c_str(), expected.c_str());
    }
}

std::string too_deep(const std::string& path, unsigned line) {
    return path + ":" + std::to_string(line) +
           ": arrays or inline tables nested deeper than 32 levels";
}

// ---- nesting --------------------------------------------------------------------------

// toml11 recurses once per level: 8,000 levels overflowed the stack (SIGSEGV in every
// program under the shim, and in `curlcache config --check`).
void test_deeply_nested_arrays_are_refused_at_the_line_passing_the_limit(void** state) {
    std::string path = write(state, "arrays.toml",
                             "mode = \"normal\"\na = " + repeat("[", 8000) + repeat("]", 8000));
    expect_text(load_file_error(path), too_deep(path, 2));
    // One level per line: the 33rd opens on line 33.
    path = write(state, "lines.toml", "a = [\n" + repeat("[\n", 40) + repeat("]\n", 41));
    expect_text(load_file_error(path), too_deep(path, 33));
}

void test_deeply_nested_inline_tables_are_refused(void** state) {
    std::string path =
        write(state, "tables.toml", "\n\na = " + repeat("{b = ", 8000) + "1" + repeat("}", 8000));
    expect_text(load_file_error(path), too_deep(path, 3));
    path = write(state, "mixed.toml", "a = " + repeat("[{b = ", 4000) + "1" + repeat("}]", 4000));
    expect_text(load_file_error(path), too_deep(path, 1));
}

void test_nesting_up_to_the_limit_loads(void** state) {
    const std::string path =
        write(state, "ok.toml",
              "[sqlite]\nfast_save = true\n[x]\ny = " + repeat("[", 32) + "1" + repeat("]", 32));
    auto loaded = load_file(path);
    if (!loaded) {
        fail_msg("%s", loaded.error().message.c_str());
    }
    assert_true(loaded->settings.sqlite_fast_save);
    assert_int_equal(loaded->warnings.size(), 1); // unknown key 'x'
}

// Brackets inside strings and comments are text; a scanner that counted them would refuse
// valid files, one that lost track of where a string ends would miss real nesting.
void test_nesting_scan_knows_strings_and_comments(void**) {
    struct Case {
        const char* text;
        unsigned line; // where depth 3 is reached, 0 = never
    };
    const Case cases[] = {
        // Brackets in strings, keys and comments do not count.
        {"a = \"[[[\" # [[[\n", 0},
        {"a = '[[[['\n\"[[[\" = 1\n", 0},
        {"a = \"\\\"[[[[\"\n", 0},
        {"a = \"\"\"\n[[[[\n\\\"\"\"[[[[ \"\"\"\n", 0},
        {"a = '''\n[[[[\n'''\n", 0},
        {"a = [\"#\", 1] # ] ] ] [[[\n", 0},
        // ... and where strings and comments end, brackets count again.
        {"a = [\"x\\\\\", [[1]]]\n", 1},       // an escaped backslash ends the string
        {"a = ['x\\', [[1]]]\n", 1},           // no escapes in literal strings
        {"a = [\"\"\"x\"\"\"\", [[1]]]\n", 1}, // """x"""" is x" : four quotes close it
        {"a = ['''x''''', [[1]]]\n", 1},       // '''x''''' is x'' : five close it
        {"a = \"\"\"\n[\n\"\"\"\nb = [[[1]]]\n", 4},
        {"a = \"\"\"x \\\n  y\"\"\"\nb = [[[1]]]\n", 3}, // a line-ending backslash
        {"# \"\nb = [[[1]]] # ]]]\n", 2},                // a quote in a comment
        {"a = \"\"\nb = ''\nc = [[[1]]]\n", 3},          // empty strings
        {"a = \"x\nb = [[[1]]]\n", 2},                   // an unterminated string ends its line
        {"[[t]]\n[[t]]\nx = [[1]]\n", 0},                // table headers close
        {"x = ]]]\ny = [[1]]\n", 0},                     // stray closers never go below 0
    };
    for (const Case& c : cases) {
        const unsigned line = line_nesting_deeper_than(c.text, 2);
        if (line != c.line) {
            fail_msg("line %u instead of %u for:\n%s", line, c.line, c.text);
        }
    }
}

// ---- size and kind of file --------------------------------------------------------------

void test_config_file_over_the_size_limit_is_refused_unread(void** state) {
    // Comment lines of 64 bytes fill the file up to the limit exactly.
    const std::string head = "mode = \"offline\"\n";
    std::string text = head + std::string(64 - head.size() - 1, '#') + "\n";
    text += repeat("#" + std::string(62, 'x') + "\n", k_max_config_bytes / 64 - 1);
    assert_int_equal(text.size(), k_max_config_bytes);
    std::string path = write(state, "fits.toml", text);
    auto loaded = load_file(path);
    if (!loaded) {
        fail_msg("%s", loaded.error().message.c_str());
    }
    assert_true(loaded->settings.mode == Mode::offline);
    path = write(state, "big.toml", text + "\n");
    expect_text(load_file_error(path), path + ": config file larger than " +
                                           std::to_string(k_max_config_bytes / 1024) +
                                           " KiB, not read");
}

// toml11 copies the current line for every token: one 240 KiB line took 46 s.
void test_long_line_is_refused_naming_it(void** state) {
    const std::string item = "\"a\", ";
    const std::string fits = repeat(item, k_max_config_line_bytes / item.size()); // 2045 bytes
    const std::string path =
        write(state, "long.toml", "\nb = [\n" + fits + "\n" + fits + item + "\n]\n");
    expect_text(load_file_error(path), path + ":4: line longer than " +
                                           std::to_string(k_max_config_line_bytes) +
                                           " bytes (arrays may span several lines)");
    assert_int_equal(line_longer_than("ab\ncde\nf", 3), 0);
    assert_int_equal(line_longer_than("ab\ncde\nfghi", 3), 3);
    assert_int_equal(line_longer_than("abcd", 3), 1);
}

// toml11 3.7 read past its buffer while reporting invalid UTF-8 inside a multi-line string
// (tests/fuzz/corpus/config/crash-ml-literal-invalid-utf8): such a file never reaches it.
void test_invalid_utf8_is_refused_before_toml11_reads_it(void** state) {
    const std::string path =
        write(state, "latin1.toml", "mode = \"normal\"\nq = '''[[[\x91\x91\n{{'''\n");
    expect_text(load_file_error(path), path + ":2: not valid UTF-8 (a TOML file is UTF-8 text)");
    assert_int_equal(line_not_utf8("a\nb\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"), 0);
    assert_int_equal(line_not_utf8("\xc0\xaf"), 1);             // overlong "/"
    assert_int_equal(line_not_utf8("\n\xed\xa0\x80"), 2);         // a surrogate
    assert_int_equal(line_not_utf8("\n\n\xf4\x90\x80\x80"), 3);   // past U+10FFFF
    assert_int_equal(line_not_utf8("ok \xe2\x82"), 1);          // cut short
    assert_int_equal(line_not_utf8("\x80"), 1);                  // a lone continuation byte
}

// A FIFO blocked the first libcurl call of the program until something wrote to it.
void test_config_that_is_not_a_regular_file_is_refused_without_blocking(void** state) {
    const std::string fifo = *static_cast<std::string*>(*state) + "/fifo.toml";
    assert_int_equal(mkfifo(fifo.c_str(), 0600), 0);
    expect_text(load_file_error(fifo), fifo + ": cannot read config file (not a regular file)");
    expect_text(load_file_error("/dev/zero"),
                "/dev/zero: cannot read config file (not a regular file)");
}

// /dev/null is the one device read: "no config file" (curlcache export and import name it
// for a cache given by URL, and users write CURLCACHE_CONFIG=/dev/null).
void test_dev_null_is_an_empty_config(void**) {
    auto loaded = load_file("/dev/null");
    assert_true(loaded.has_value());
    assert_true(loaded->warnings.empty());
}

// ---- time -------------------------------------------------------------------------------

// toml11's location() counts newlines from the start of the file on every call: 20,000
// keys took seconds. Unknown keys are also listed only up to a point.
double thread_cpu_seconds() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

void test_loading_is_linear_in_the_number_of_keys(void** state) {
    auto seconds_to_load = [&](size_t keys) {
        std::string text;
        for (size_t i = 0; i < keys; ++i) {
            text += "key_" + std::to_string(i) + " = " + std::to_string(i) + "\n";
        }
        const std::string path = write(state, "keys.toml", text);
        // The CPU time of this thread, best of three: a busy machine delays a thread (wall
        // time) but does not make it do more work, so the ratio stays that of the work.
        double best = 0;
        for (int round = 0; round < 3; ++round) {
            const double start = thread_cpu_seconds();
            auto loaded = load_file(path);
            const double took = thread_cpu_seconds() - start;
            assert_true(loaded.has_value());
            assert_int_equal(loaded->warnings.size(), 21);
            expect_text(loaded->warnings[0], path + ":1: unknown key 'key_0'");
            expect_text(loaded->warnings[20], path + ": " + std::to_string(keys - 20) +
                                                  " more unknown keys not listed");
            best = round == 0 ? took : std::min(best, took);
        }
        return best;
    };
    const double small = seconds_to_load(1000);
    const double large = seconds_to_load(12000); // 216 KB, under the size limit
    print_message("1,000 keys: %.3f s, 12,000 keys: %.3f s\n", small, large);
    // Linear is 12 times as long; quadratic was 144 times. The slack absorbs caches and
    // allocator effects; CPU time (above) keeps other processes out of it.
    if (large > 40 * small + 0.3) {
        fail_msg("12,000 keys took %.3f s, 1,000 keys %.3f s: not linear", large, small);
    }
}

} // namespace

int main() {
    const CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deeply_nested_arrays_are_refused_at_the_line_passing_the_limit, make_scratch,
            remove_scratch),
        cmocka_unit_test_setup_teardown(test_deeply_nested_inline_tables_are_refused, make_scratch,
                                        remove_scratch),
        cmocka_unit_test_setup_teardown(test_nesting_up_to_the_limit_loads, make_scratch,
                                        remove_scratch),
        cmocka_unit_test(test_nesting_scan_knows_strings_and_comments),
        cmocka_unit_test(test_dev_null_is_an_empty_config),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_is_refused_before_toml11_reads_it,
                                        make_scratch, remove_scratch),
        cmocka_unit_test_setup_teardown(test_config_file_over_the_size_limit_is_refused_unread,
                                        make_scratch, remove_scratch),
        cmocka_unit_test_setup_teardown(test_long_line_is_refused_naming_it, make_scratch,
                                        remove_scratch),
        cmocka_unit_test_setup_teardown(
            test_config_that_is_not_a_regular_file_is_refused_without_blocking, make_scratch,
            remove_scratch),
        cmocka_unit_test_setup_teardown(test_loading_is_linear_in_the_number_of_keys, make_scratch,
                                        remove_scratch),
    };
    return cmocka_run_group_tests_name("config limits", tests, nullptr, nullptr);
}
