// The table of the linked libcurl: the direct-link convenience needs no symbol lookup.
#include "core/lib/linked_curl.h"

namespace curlcache::core::lib {

const easy::CurlApi& linked_curl() {
    static const easy::CurlApi api = [] {
        easy::CurlApi a;
        a.library = "linked";
        a.easy_init = &curl_easy_init;
        a.easy_setopt = &curl_easy_setopt;
        a.easy_perform = &curl_easy_perform;
        a.easy_getinfo = &curl_easy_getinfo;
        a.easy_cleanup = &curl_easy_cleanup;
        a.easy_reset = &curl_easy_reset;
        a.easy_duphandle = &curl_easy_duphandle;
        a.easy_header = &curl_easy_header;
        a.easy_nextheader = &curl_easy_nextheader;
        a.easy_strerror = &curl_easy_strerror;
        a.multi_add_handle = &curl_multi_add_handle;
        a.multi_remove_handle = &curl_multi_remove_handle;
        a.multi_perform = &curl_multi_perform;
        a.multi_info_read = &curl_multi_info_read;
        a.multi_wait = &curl_multi_wait;
        a.multi_poll = &curl_multi_poll;
        a.multi_fdset = &curl_multi_fdset;
        a.multi_timeout = &curl_multi_timeout;
        a.multi_socket_action = &curl_multi_socket_action;
        a.multi_cleanup = &curl_multi_cleanup;
        return a;
    }();
    return api;
}

} // namespace curlcache::core::lib
