# `make uninstall` (the uninstall target): removes every file that the last install from
# this build tree wrote, as install_manifest.txt lists them (under $DESTDIR when it is set,
# as for the install), then those of curlcache's own folders (include/curlcache,
# <libdir>/cmake/curlcache, share/doc/curlcache) that are left empty. Shared folders (bin,
# lib, ...) stay.
#   cmake -DMANIFEST=<build>/install_manifest.txt -P cmake/uninstall.cmake
if(NOT EXISTS "${MANIFEST}")
  message(FATAL_ERROR "uninstall: ${MANIFEST} is missing: nothing was installed from this build tree")
endif()

file(STRINGS "${MANIFEST}" installed_files)
set(own_dirs)
set(system_libs_removed FALSE)
foreach(listed IN LISTS installed_files)
  set(path "$ENV{DESTDIR}${listed}")
  if(EXISTS "${path}" OR IS_SYMLINK "${path}")
    message(STATUS "Removing ${path}")
    file(REMOVE "${path}")
    if(EXISTS "${path}" OR IS_SYMLINK "${path}")
      message(FATAL_ERROR "uninstall: could not remove ${path}")
    endif()
    if(path MATCHES "^/usr(/local)?/lib.*/libcurlcache[^/]*\\.so")
      set(system_libs_removed TRUE)
    endif()
  else()
    message(STATUS "Already gone: ${path}")
  endif()
  get_filename_component(dir "${path}" DIRECTORY)
  if(dir MATCHES "/curlcache$")
    list(APPEND own_dirs "${dir}")
  endif()
endforeach()

list(REMOVE_DUPLICATES own_dirs)
foreach(dir IN LISTS own_dirs)
  file(GLOB left LIST_DIRECTORIES true "${dir}/*")
  if(IS_DIRECTORY "${dir}" AND NOT left)
    file(REMOVE_RECURSE "${dir}")
  endif()
endforeach()

# The dynamic loader's cache forgets the library, as the install taught it (root only).
if(system_libs_removed AND "$ENV{DESTDIR}" STREQUAL "")
  execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
  find_program(ldconfig ldconfig PATHS /sbin /usr/sbin)
  if(uid STREQUAL "0" AND ldconfig)
    execute_process(COMMAND ${ldconfig})
  endif()
endif()
