/* Stands for a language runtime's curl extension: a module linked against libcurl that
 * the host loads with dlopen(RTLD_DEEPBIND | RTLD_LOCAL) and calls through dlsym. */
#define _GNU_SOURCE
#include <curl/curl.h>

#include <dlfcn.h>
#include <string.h>

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

/* Prints which object the module's curl_easy_init is bound to: the shim, or libcurl itself
 * (what RTLD_DEEPBIND gives when the shim leaves the flag alone). */
__attribute__((visibility("default"))) void ext_where(void) {
    Dl_info where;
    const char* name = "?";
    if (dladdr((void*)&curl_easy_init, &where) != 0 && where.dli_fname != NULL) {
        const char* slash = strrchr(where.dli_fname, '/');
        name = slash != NULL ? slash + 1 : where.dli_fname;
    }
    printf("curl_easy_init from %s\n", name);
    fflush(stdout);
}
