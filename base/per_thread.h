// A per-thread object that is still there while exit() runs on the main thread.
#pragma once

#include <pthread.h>

#include <new>

namespace curlcache::base {

template <class T> struct PerThread {
    static inline thread_local T* object = nullptr; // trivially destructible
    static void gone(void* made) noexcept {
        delete static_cast<T*>(made);
        object = nullptr;
    }
    static pthread_key_t* key() noexcept {
        static pthread_key_t made;
        static const bool ok = pthread_key_create(&made, &gone) == 0;
        return ok ? &made : nullptr;
    }
};

// The calling thread's T, made on first use; nullptr when it cannot be made. A thread that
// exits deletes its own (a pthread key's destructor); the main thread's stays until the
// process is gone.
//
// A thread_local object with a destructor would not do: glibc destroys the main thread's
// thread_local objects as exit() begins, before the atexit handlers and static destructors
// run, and a program may still make a transfer from those (a destroyed std::vector or
// std::string keeps pointing at the memory it freed).
template <class T> T* per_thread() noexcept {
    T*& object = PerThread<T>::object;
    if (object == nullptr) {
        object = new (std::nothrow) T();
        if (pthread_key_t* key = PerThread<T>::key(); object != nullptr && key != nullptr) {
            (void)pthread_setspecific(*key, object);
        }
    }
    return object;
}

} // namespace curlcache::base
