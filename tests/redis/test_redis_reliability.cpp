// The Redis backend when Redis misbehaves: killed, paused, never answering, restarted,
// password-protected; plus the URL forms (TCP, database number, Unix socket).
#include "backends/redis_storage.h"
#include "tests/redis/fixture.h"

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <csetjmp>
extern "C" {
#include <cmocka.h>
}

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

using namespace curlcache;
using namespace curlcache::backends;
using curlcache::tests::redis::RedisServer;

namespace {

std::string g_scratch;

int setup(void**) {
    g_scratch = tests::redis::make_scratch();
    return 0;
}

int teardown(void**) {
    tests::redis::remove_tree(g_scratch);
    return 0;
}

std::unique_ptr<Storage> must_open(const config::Settings& settings) {
    auto opened = open_redis(settings);
    if (!opened) {
        fail_msg("open_redis: %s", opened.error().message.c_str());
    }
    return std::move(*opened);
}

Metadata meta_for(const std::string& key) {
    Metadata meta;
    meta.key = key;
    meta.method = "GET";
    meta.url = "http://127.0.0.1/" + key;
    meta.status = 200;
    return meta;
}

bool works(Storage& storage) {
    std::string_view pieces[] = {"value"};
    auto got = storage.put(meta_for("probe"), pieces) ? storage.get("probe")
                                                       : Result<std::optional<Blob>>{};
    return got && *got && ***got == "value";
}

void test_killed_redis_fails_fast_then_works_after_restart(void**) {
    RedisServer server(g_scratch);
    auto storage = must_open(tests::redis::redis_settings(server, "kill"));
    assert_true(works(*storage));
    server.kill9();

    int64_t start = tests::redis::now_ms();
    // A large put on the stale connection writes into a closed socket: it fails, and does
    // not kill us with SIGPIPE.
    std::string big(8u << 20, 'x');
    std::string_view pieces[] = {big};
    assert_false(storage->put(meta_for("big"), pieces).has_value());
    auto got = storage->get("probe");
    assert_false(got.has_value());
    assert_int_equal(static_cast<int>(got.error().kind), static_cast<int>(ErrorKind::failure));
    assert_true(got.error().message.find("redis redis://127.0.0.1:") == 0);
    // Within the backoff, operations fail at once without trying to connect.
    for (int i = 0; i < 100; ++i) {
        assert_false(storage->get("probe").has_value());
    }
    assert_true(tests::redis::now_ms() - start < 2000); // generous: the machine may be busy

    server.start();
    assert_true(tests::redis::await([&] { return works(*storage); }, 5000));
}

void test_paused_redis_times_out_within_the_command_timeout(void**) {
    RedisServer server(g_scratch);
    auto storage = must_open(tests::redis::redis_settings(server, "pause")); // 500 ms command timeout
    assert_true(works(*storage));
    server.pause();
    int64_t start = tests::redis::now_ms();
    auto got = storage->get("probe");
    int64_t first = tests::redis::now_ms() - start;
    assert_false(got.has_value());
    assert_int_equal(static_cast<int>(got.error().kind), static_cast<int>(ErrorKind::timeout));
    assert_true(first >= 400 && first < 3000);
    // The next operations do not wait again: the backoff answers at once.
    start = tests::redis::now_ms();
    for (int i = 0; i < 20; ++i) {
        auto again = storage->get("probe");
        assert_false(again.has_value());
        assert_int_equal(static_cast<int>(again.error().kind), static_cast<int>(ErrorKind::timeout));
    }
    assert_true(tests::redis::now_ms() - start < 2000); // 20 x 500 ms without the backoff
    server.resume();
    assert_true(tests::redis::await([&] { return works(*storage); }, 5000));
}

void test_server_that_never_answers_fails_open_with_a_timeout(void**) {
    // A listening socket nobody accepts from: the kernel completes the handshake, then
    // nothing ever answers.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    assert_int_equal(bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);

    config::Settings settings;
    settings.redis_url = "redis://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
    settings.redis_command_timeout_ms = 300;
    int64_t start = tests::redis::now_ms();
    auto opened = open_redis(settings);
    int64_t elapsed = tests::redis::now_ms() - start;
    close(fd);
    assert_false(opened.has_value());
    assert_int_equal(static_cast<int>(opened.error().kind), static_cast<int>(ErrorKind::timeout));
    assert_true(elapsed >= 250 && elapsed < 3000);
}

void test_refused_connection_is_reported_at_open(void**) {
    config::Settings settings;
    settings.redis_url = "redis://127.0.0.1:" + std::to_string(tests::redis::free_port()) + "/0";
    int64_t start = tests::redis::now_ms();
    auto opened = open_redis(settings);
    assert_false(opened.has_value());
    assert_true(tests::redis::now_ms() - start < 2000);
    assert_true(opened.error().message.find("cannot connect") != std::string::npos);
}

void test_wrong_password_says_authentication_failed_without_the_password(void**) {
    RedisServer server(g_scratch, {"--requirepass", "s3cret"});
    config::Settings settings = tests::redis::redis_settings(server, "auth");
    settings.redis_url = "redis://:wrongpw@127.0.0.1:" + std::to_string(server.port()) + "/0";
    auto opened = open_redis(settings);
    assert_false(opened.has_value());
    assert_true(opened.error().message.find("authentication failed") != std::string::npos);
    assert_true(opened.error().message.find("wrongpw") == std::string::npos);

    settings.redis_url = server.url();
    opened = open_redis(settings);
    assert_false(opened.has_value());
    assert_true(opened.error().message.find("authentication required") != std::string::npos);

    settings.redis_url = "redis://:s3cret@127.0.0.1:" + std::to_string(server.port()) + "/0";
    auto storage = must_open(settings);
    assert_true(works(*storage));
    assert_true(storage->location().find("s3cret") == std::string::npos);
}

void test_database_number_and_unix_socket_are_honoured(void**) {
    RedisServer server(g_scratch);
    config::Settings settings = tests::redis::redis_settings(server, "db");
    settings.redis_url = server.url(3);
    auto storage = must_open(settings);
    assert_true(works(*storage));
    assert_string_equal(server.command({"EXISTS", "db:e:probe"}).c_str(), "(integer) 0");

    settings.redis_url = "unix://" + server.unix_socket() + "?db=3";
    auto local = must_open(settings);
    auto got = local->get("probe");
    assert_true(got && *got && ***got == "value");
    assert_true(local->location().starts_with("unix://"));
}

void test_redis_urls_parse_or_fail_clearly(void**) {
    auto a = parse_redis_url("redis://cache.example:6380/2");
    assert_true(a && a->host == "cache.example" && a->port == 6380 && a->db == 2);
    auto b = parse_redis_url("redis://:p%40ss@10.0.0.1");
    assert_true(b && b->password == "p@ss" && b->user.empty() && b->port == 6379 && b->db == 0);
    auto c = parse_redis_url("redis://alice:pw@[::1]:7000/1");
    assert_true(c && c->host == "::1" && c->user == "alice" && c->port == 7000 && c->db == 1);
    assert_string_equal(c->display().c_str(), "redis://[::1]:7000/1");
    auto d = parse_redis_url("unix:///run/redis.sock?db=4");
    assert_true(d && d->socket_path == "/run/redis.sock" && d->db == 4);
    assert_false(parse_redis_url("http://x").has_value());
    auto tls = parse_redis_url("rediss://host:6380");
    assert_true(!tls && tls.error().message.find("TLS") != std::string::npos);
    assert_false(parse_redis_url("redis://host:99999").has_value());
    assert_false(parse_redis_url("redis://host/zero").has_value());
    assert_false(parse_redis_url("redis://").has_value());
    auto bad = parse_redis_url("redis://:secret@host:x");
    assert_true(!bad && bad.error().message.find("secret") == std::string::npos);
}

// A '%' not followed by two hex digits is kept as it is: "%-1" decoded to the byte 0xff
// (tests/fuzz/corpus/redis_url/crash-percent-sign).
void test_redis_url_percent_escapes_need_two_hex_digits(void**) {
    auto a = parse_redis_url("redis://u%2d1:p%-1%+2%%41%4@host");
    assert_true(a.has_value());
    assert_string_equal(a->user.c_str(), "u-1");
    assert_string_equal(a->password.c_str(), "p%-1%+2%A%4");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_killed_redis_fails_fast_then_works_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_redis_times_out_within_the_command_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_that_never_answers_fails_open_with_a_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_connection_is_reported_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_says_authentication_failed_without_the_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_number_and_unix_socket_are_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_urls_parse_or_fail_clearly, setup, teardown),
        cmocka_unit_test(test_redis_url_percent_escapes_need_two_hex_digits),
    };
    return cmocka_run_group_tests_name("redis_reliability", tests, nullptr, nullptr);
}
