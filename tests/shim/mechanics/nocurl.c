/* A program that never touches libcurl (but does dlopen): its output and exit code must be
 * the same with the shim preloaded. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) {
        printf("arg %d: %s\n", i, argv[i]);
    }
    void* self = dlopen(NULL, RTLD_NOW);
    printf("dlopen(NULL): %s\n", self != NULL ? "ok" : "failed");
    void* missing = dlopen("libcurlcache-no-such-library.so", RTLD_NOW);
    printf("missing library: %s\n", missing == NULL ? "not found" : "found");
    return 3;
}
