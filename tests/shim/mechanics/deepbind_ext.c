/* Stands for a language runtime's curl extension: a module linked against libcurl that
 * the host loads with dlopen(RTLD_DEEPBIND | RTLD_LOCAL) and calls through dlsym. */
#include <curl/curl.h>

#include <stdio.h>

__attribute__((visibility("default"))) int ext_fetch(const char* url) {
    CURL* easy = curl_easy_init();
    if (easy == NULL) {
        return 1;
    }
    curl_easy_setopt(easy, CURLOPT_URL, url);
    CURLcode code = curl_easy_perform(easy); /* the body goes to stdout */
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    printf("\ncode=%d status=%ld\n", (int)code, status);
    fflush(stdout);
    curl_easy_cleanup(easy);
    return code == CURLE_OK ? 0 : 1;
}
