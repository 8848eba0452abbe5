// The filesystem backend's usage ledger (backends/filesystem_ledger.h): a writer killed
// between writing its change as pending and writing the result leaves counters that the
// next writer settles exactly, whether the change happened or not; a torn or missing
// ledger is recounted.
#include "backends/filesystem_ledger.h"
#include "backends/filesystem_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "tests/backends/conformance.h" // last: cmocka's macros

namespace {

using namespace curlcache;
using backends::filesystem::Change;
using backends::filesystem::Counts;
using backends::filesystem::Ledger;

struct Tree {
    std::string dir;
    int recounts = 0;
    Counts recounted{7, 700}; // what a walk of the tree "finds"
};

Ledger make_ledger(Tree& tree) {
    return Ledger(
        tree.dir, false,
        [&tree]() -> backends::Result<Counts> {
            ++tree.recounts;
            return tree.recounted;
        },
        [&tree](std::string_view key) { return backends::filesystem_entry_path(tree.dir, key); });
}

Counts counts_of(Ledger& ledger) {
    Counts counts;
    auto read = ledger.locked([&](Ledger::Session& session) {
        counts = session.counts();
        return backends::Result<void>{};
    });
    assert_true(read.has_value());
    return counts;
}

// A file named `name` in the tree's temp folder; its inode.
uint64_t make_file(const std::string& path) {
    std::ofstream(path) << "x";
    struct stat st {};
    assert_int_equal(::stat(path.c_str(), &st), 0);
    return st.st_ino;
}

// Runs one change in a child that dies inside `act` (after doing what `act` does).
void die_during_change(Tree& tree, std::string_view key, Change kind, uint64_t ino,
                       int64_t d_entries, int64_t d_bytes, void (*act)(const std::string&),
                       const std::string& argument) {
    pid_t child = ::fork();
    assert_true(child >= 0);
    if (child == 0) {
        Ledger ledger = make_ledger(tree);
        (void)ledger.locked([&](Ledger::Session& session) {
            return session.change(key, kind, ino, d_entries, d_bytes, [&] {
                act(argument);
                ::_exit(0); // killed before the result was written
                return true;
            });
        });
        ::_exit(1);
    }
    int status = 0;
    assert_int_equal(::waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

void test_a_writer_killed_mid_change_leaves_exact_counters(void** state) {
    Tree tree{tests::scratch_of(state)};
    std::string key = tests::test_key(1);
    std::string path = backends::filesystem_entry_path(tree.dir, key);
    ::mkdir((tree.dir + "/" + key.substr(0, 2)).c_str(), 0700);
    {
        Ledger ledger = make_ledger(tree);
        Counts first = counts_of(ledger); // a new ledger: one recount
        assert_int_equal(first.entries, 7);
        assert_int_equal(tree.recounts, 1);
    }
    static std::string s_path;
    s_path = path;

    // Died after renaming its file into place: the install counts.
    uint64_t ino = make_file(tree.dir + "/temp1");
    die_during_change(tree, key, Change::install, ino, 1, 100,
                      [](const std::string& temp) { ::rename(temp.c_str(), s_path.c_str()); },
                      tree.dir + "/temp1");
    Ledger ledger = make_ledger(tree);
    Counts counts = counts_of(ledger);
    assert_int_equal(counts.entries, 8);
    assert_int_equal(counts.bytes, 800);

    // Died before renaming: nothing changed.
    uint64_t other = make_file(tree.dir + "/temp2");
    die_during_change(tree, key, Change::install, other, 0, 50, [](const std::string&) {},
                      std::string());
    counts = counts_of(ledger);
    assert_int_equal(counts.entries, 8);
    assert_int_equal(counts.bytes, 800);

    // Died after unlinking: the removal counts; before unlinking: it does not.
    die_during_change(tree, key, Change::unlink, ino, -1, -100, [](const std::string&) {},
                      std::string());
    assert_int_equal(counts_of(ledger).entries, 8);
    die_during_change(tree, key, Change::unlink, ino, -1, -100,
                      [](const std::string&) { ::unlink(s_path.c_str()); }, std::string());
    counts = counts_of(ledger);
    assert_int_equal(counts.entries, 7);
    assert_int_equal(counts.bytes, 700);
    assert_int_equal(tree.recounts, 1); // settled, never recounted
}

void test_a_torn_or_missing_ledger_is_recounted(void** state) {
    Tree tree{tests::scratch_of(state)};
    Ledger ledger = make_ledger(tree);
    assert_true(ledger.locked([](Ledger::Session& session) {
        return session.set({3, 30});
    }).has_value());
    assert_int_equal(counts_of(ledger).entries, 3);
    assert_int_equal(tree.recounts, 1);
    {
        int fd = ::open((tree.dir + "/usage").c_str(), O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(::pwrite(fd, "torn", 4, 12), 4);
        ::close(fd);
    }
    assert_int_equal(counts_of(ledger).entries, 7);
    assert_int_equal(tree.recounts, 2);
    ::unlink((tree.dir + "/usage").c_str());
    Ledger again = make_ledger(tree);
    assert_int_equal(counts_of(again).entries, 7);
    assert_int_equal(tree.recounts, 3);
    auto peeked = again.peek();
    assert_true(peeked.has_value() && peeked->bytes == 700);
}

} // namespace

int main() {
    const struct CMUnitTest cases[] = {
        cmocka_unit_test_setup_teardown(test_a_writer_killed_mid_change_leaves_exact_counters,
                                        tests::scratch_setup, tests::scratch_teardown),
        cmocka_unit_test_setup_teardown(test_a_torn_or_missing_ledger_is_recounted,
                                        tests::scratch_setup, tests::scratch_teardown),
    };
    return cmocka_run_group_tests_name("filesystem ledger", cases, nullptr, nullptr);
}
