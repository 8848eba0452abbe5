/* deepbind_host MODULE [URL | --where]: loads MODULE the way some language runtimes load
 * their extensions, dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), by the name given (a bare
 * name is found through this program's RUNPATH), then calls its ext_fetch(URL) through
 * dlsym, or with --where its ext_where() (which object its curl_easy_init is bound to). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: deepbind_host MODULE [URL]\n");
        return 2;
    }
    void* module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (module == NULL) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    printf("loaded %s\n", argv[1]);
    fflush(stdout);
    if (argc < 3) {
        return 0;
    }
    if (strcmp(argv[2], "--where") == 0) {
        void (*where)(void) = (void (*)(void))dlsym(module, "ext_where");
        if (where == NULL) {
            return 1;
        }
        where();
        return 0;
    }
    int (*fetch)(const char*) = (int (*)(const char*))dlsym(module, "ext_fetch");
    if (fetch == NULL) {
        printf("no ext_fetch: %s\n", dlerror());
        return 1;
    }
    return fetch(argv[2]);
}
